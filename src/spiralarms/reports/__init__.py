"""Report pages: the Markdown reports of each folder rendered as one self-contained HTML page."""

from spiralarms.reports.html import markdown_to_html, write_html_report

__all__ = ["markdown_to_html", "write_html_report"]
