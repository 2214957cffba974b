"""One check of a report folder's HTML page, shared by the demo, reproduce, explain and mass tests."""

from __future__ import annotations

import re
from pathlib import Path


def check_report_page(folder: Path) -> str:
    """``report.html`` exists, inlines every figure of ``report.md`` and links only files that exist."""
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    page = (folder / "report.html").read_text(encoding="utf-8")
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    inlined = re.findall(r'<img src="data:image/[a-z]+;base64,[^"]+"', page)
    assert len(inlined) == len(figures), f"{len(figures)} figures in report.md, {len(inlined)} inlined"
    assert all((folder / f).is_file() for f in figures), "report.md shows a figure that is not there"
    assert "missing figure" not in page
    for link in re.findall(r'href="([^"#]+)"', page):
        assert re.match(r"^[a-z]+:", link) or (folder / link).exists(), f"report.html links to missing {link}"
    assert "How to read this" in page
    return page
