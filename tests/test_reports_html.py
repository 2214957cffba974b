"""Self-contained HTML report pages (issue 14): figures inlined, links only to files that exist."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from spiralarms.reports import write_html_report


def _folder(tmp_path):
    for name in ("a.png", "b.png"):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        fig.savefig(tmp_path / name)
        plt.close(fig)
    (tmp_path / "table.csv").write_text("x\n1\n")
    (tmp_path / "report.md").write_text(
        "# A report\n\nText.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![first](a.png)\n\n"
        "## More\n\n![second](b.png)\n\nData: [table](table.csv).\n"
    )
    return tmp_path


def test_page_inlines_every_figure_of_the_markdown_and_links_only_existing_files(tmp_path):
    folder = _folder(tmp_path)
    page = write_html_report(folder, title="A report", how_to_read="Rows are classes.").read_text()
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == len(re.findall(r"!\[", (folder / "report.md").read_text())) == 2
    assert base64.b64decode(images[0]) == (folder / "a.png").read_bytes()
    links = re.findall(r'href="([^"]+)"', page)
    assert links == ["table.csv"] and all((folder / link).is_file() for link in links)
    assert "<table>" in page and "How to read this" in page and "Rows are classes." in page
    assert "http" not in page.replace("http-equiv", ""), "nothing is fetched from the network"


def test_missing_figure_is_named_not_silently_dropped(tmp_path):
    (tmp_path / "report.md").write_text("# R\n\n![gone](gone.png)\n")
    page = write_html_report(tmp_path, title="R").read_text()
    assert 'alt="missing figure gone.png"' in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (apt-get install chromium)")
def test_page_renders_in_headless_chromium(tmp_path):
    folder = _folder(tmp_path)
    page = write_html_report(folder, title="A report")
    shot = tmp_path / "shot.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1000,1400", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1000, 1400)
    assert len(np.unique(np.asarray(image))) > 10, "the page drew text and figures, not a blank screen"
