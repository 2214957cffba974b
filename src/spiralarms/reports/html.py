"""Self-contained HTML pages of the report folders, viewable offline.

Every report folder (``demo``, ``reproduce``, ``explain``, ``mass``) keeps its
``report.md`` (for diffs and version control) and gets a ``report.html`` beside it:
the same content rendered by markdown-it (already installed with rich), every figure
the Markdown shows inlined as a ``data:`` URI, so the page is one file that opens
anywhere with no network and no folder around it, a short "how to read this" box,
and links to the folder's data files (CSV, JSON), which stay relative.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
from pathlib import Path

from markdown_it import MarkdownIt

from spiralarms import __version__
from spiralarms.io.atomic import write_text

__all__ = ["markdown_to_html", "write_html_report"]

_CSS = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
       max-width: 980px; margin: 2em auto; padding: 0 1.2em; background: #fbfbfd; }
h1 { font-size: 1.7em; border-bottom: 2px solid #d8dce6; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 1.8em; border-bottom: 1px solid #e4e7ee; }
h3 { font-size: 1.1em; }
table { border-collapse: collapse; margin: .8em 0; font-variant-numeric: tabular-nums; display: block; overflow-x: auto; }
th, td { border: 1px solid #d8dce6; padding: .25em .6em; }
th { background: #eef1f7; }
tr:nth-child(even) td { background: #f6f7fb; }
img { max-width: 100%; height: auto; border: 1px solid #e4e7ee; background: white; }
code { background: #eef1f7; padding: 0 .25em; border-radius: 3px; }
pre { background: #eef1f7; padding: .6em; overflow-x: auto; }
.howto { background: #eef6ee; border-left: 4px solid #5a9a5a; padding: .4em 1em; margin: 1em 0; }
.howto h2 { border: none; margin-top: .4em; font-size: 1.05em; }
footer { color: #6b7280; font-size: .85em; margin-top: 3em; }
"""

_IMG = re.compile(r'<img src="([^"]+)"')


def _inline_images(body: str, folder: Path) -> str:
    """Replace the ``src`` of every local image by its bytes as a ``data:`` URI."""

    def repl(match: re.Match) -> str:
        src = html.unescape(match.group(1))
        if re.match(r"^[a-z]+:", src):  # data:, http: ... left alone
            return match.group(0)
        path = folder / src
        if not path.is_file():
            return f'<img alt="missing figure {html.escape(src)}" src=""'
        kind = mimetypes.guess_type(path.name)[0] or "image/png"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img src="data:{kind};base64,{data}"'

    return _IMG.sub(repl, body)


def markdown_to_html(markdown: str, folder: str | os.PathLike, *, title: str, how_to_read: str | None = None) -> str:
    """A whole HTML page from Markdown, with the folder's figures inlined.

    Parameters
    ----------
    markdown : str
        The report's Markdown (GitHub tables allowed).
    folder : path
        The report folder: image paths in the Markdown are relative to it.
    title : str
        The page title.
    how_to_read : str, optional
        Markdown for a highlighted "How to read this" box after the first heading.

    Returns
    -------
    str
    """
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    body = md.render(markdown)
    if how_to_read:
        box = f'<div class="howto"><h2>How to read this</h2>{md.render(how_to_read)}</div>'
        end = body.find("</h1>")
        body = body[: end + 5] + box + body[end + 5 :] if end >= 0 else box + body
    body = _inline_images(body, Path(folder))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}</title>"
        f"<style>{_CSS}</style></head><body>\n{body}\n"
        f"<footer>spiralarms {html.escape(__version__)}: a self-contained page; the Markdown beside it "
        "holds the same content.</footer></body></html>\n"
    )


def write_html_report(
    folder: str | os.PathLike,
    *,
    title: str,
    how_to_read: str | None = None,
    markdown_file: str = "report.md",
    out_file: str = "report.html",
) -> Path:
    """Render ``folder/report.md`` into ``folder/report.html`` (atomically).

    Returns
    -------
    pathlib.Path
        The page written.
    """
    folder = Path(folder)
    text = (folder / markdown_file).read_text(encoding="utf-8")
    return write_text(folder / out_file, markdown_to_html(text, folder, title=title, how_to_read=how_to_read))
