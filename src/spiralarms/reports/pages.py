"""The Markdown pages of the ``explain`` and ``mass`` report folders, and every folder's HTML page.

``demo`` and ``reproduce`` write their own ``report.md``; the two builders here
write the same kind of page for ``explain`` (from ``explain.json``) and ``mass``
(from Table 4 and the summary). :func:`write_report_html` then renders any
folder's ``report.md`` into ``report.html`` with the report kind's "how to read
this" box.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from spiralarms.io.atomic import write_text
from spiralarms.reports.html import write_html_report

__all__ = ["HOW_TO_READ", "explain_markdown", "mass_markdown", "write_report_html"]

#: The "how to read this" box of each kind of report folder.
HOW_TO_READ: dict[str, str] = {
    "demo": (
        "The demo trains the paper's B0 recipe (a frozen pretrained backbone and a dense head) on the "
        "embedded synthetic galaxies, whose true arm number is known. **Macro F1** is the mean of the "
        "per-class F1 scores: 1 is perfect, 1/6 is chance for six classes. The confusion matrix reads by "
        "rows: each true class, and where its galaxies went. Synthetic galaxies are easier than SDSS "
        "cutouts: the numbers show the pipeline works, not how well a model does on real data."
    ),
    "reproduce": (
        "Each section is one experiment of the paper, with the paper's number beside ours and the "
        "difference. Sections say which protocol produced them (cap before or after the split, which "
        "vote table) and every departure from the paper is named next to the number it affects. "
        "Figures are the paper's Figures 5, 6, 7 and 13 redrawn from our runs; `runs.csv` holds every run."
    ),
    "explain": (
        "Grad-CAM++ and SmoothGrad show which pixels drive the predicted class (warm = more). The "
        "galleries are the most confident correct and wrong galaxies per class (the paper's Figures 9 "
        "and 10). **Faithfulness**: the deletion curve removes the most salient pixels first; a map that "
        "explains the model makes the class probability fall faster than removing random pixels "
        "(smaller area under the curve). Mask energy is the share of a map's weight on the galaxy and "
        "on its arms, where synthetic masks are known."
    ),
    "mass": (
        "Table 4 of the paper: for each arm class, the two-sample Kolmogorov-Smirnov test and the "
        "t-test of its stellar masses against the whole sample (Student's, as the paper, whose p-values "
        "are two-sided; Welch's one-sided test beside it). A p-value below 0.05 marks a mass distribution "
        "that differs; the paper finds it for m = 1 in the GZ2 labels only. The paper's values stand "
        "beside ours for the sources it has (labels, B0, V2M). `table4.csv` holds every column."
    ),
}


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def explain_markdown(summary: Mapping, folder: str | os.PathLike) -> str:
    """``report.md`` of an ``explain`` folder, from its ``explain.json`` content.

    Parameters
    ----------
    summary : mapping
        What :func:`spiralarms.explain.run.explain_run` returns.
    folder : path
        The explain folder (figures are linked relative to it, when they exist).
    """
    folder = Path(folder)
    lines = [
        f"# Explanations: {summary['backbone']}",
        "",
        f"Model `{summary['run']}`, {summary['n_galaxies']} galaxies of the {summary['source']}; "
        f"maps of the {summary['target']}. Crop {summary['crop']}, {'grey' if summary['grey'] else 'colour'}, "
        f"backbone {'frozen' if summary['frozen'] else 'trained'}, on {summary['device']}.",
        "",
        "| method | setting |",
        "|---|---|",
        f"| Grad-CAM++ | layer `{summary['gradcampp']['layer']}` |",
        f"| SmoothGrad | noise {summary['smoothgrad']['noise']}, {summary['smoothgrad']['samples']} samples, "
        f"seed {summary['smoothgrad']['seed']} |",
        "| feature maps (Figure 8) | " + ", ".join(f"{k} `{v}`" for k, v in summary["feature_layers"].items()) + " |",
        "",
    ]
    figures = [
        ("gallery_correct.png", "Most confident correct galaxies per class (the paper's Figure 9)"),
        ("gallery_wrong.png", "Most confident wrong galaxies per class (the paper's Figure 10)"),
        ("images.png", "The given images with their Grad-CAM++ and SmoothGrad maps"),
        ("deletion_curves.png", "Deletion curves: Grad-CAM++, SmoothGrad and random pixel order"),
    ]
    for name, caption in figures:
        if (folder / name).is_file():
            lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    feature_maps = sorted((folder / "feature_maps").glob("*.png")) if (folder / "feature_maps").is_dir() else []
    if feature_maps:
        lines += ["## Feature maps (the paper's Figure 8)", ""]
        lines += [f"![feature maps of {p.stem}](feature_maps/{p.name})" for p in feature_maps[:6]]
        if len(feature_maps) > 6:
            lines.append(f"\n{len(feature_maps) - 6} more in `feature_maps/`.")
        lines.append("")
    faith = summary.get("faithfulness") or {}
    deletion = (faith.get("deletion") or {}).get("overall")
    energy = (faith.get("mask_energy") or {}).get("overall")
    if deletion or energy:
        lines += ["## Faithfulness", "", "| measure | Grad-CAM++ | SmoothGrad | reference |", "|---|---|---|---|"]
        if deletion:
            lines.append(f"| deletion AUC (lower = more faithful) | {_fmt(deletion.get('auc_gradcampp'))} | "
                         f"{_fmt(deletion.get('auc_smoothgrad'))} | random order {_fmt(deletion.get('auc_random'))} |")
        if energy:
            lines.append(f"| share of the map on the galaxy | {_fmt(energy.get('gradcampp_galaxy'))} | "
                         f"{_fmt(energy.get('smoothgrad_galaxy'))} | galaxy area {_fmt(energy.get('galaxy_coverage'))} |")
            lines.append(f"| share of the map on the arms | {_fmt(energy.get('gradcampp_arms'))} | "
                         f"{_fmt(energy.get('smoothgrad_arms'))} | arm area {_fmt(energy.get('arms_coverage'))} |")
        lines.append("")
    if summary.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    lines += ["Data: `explain.json` (settings and scores), `galaxies.csv` (one row per galaxy), `maps/` (the maps).", ""]
    return "\n".join(lines)


def mass_markdown(table4: pd.DataFrame, summary: Mapping, paper: pd.DataFrame | None, folder: str | os.PathLike) -> str:
    """``report.md`` of a ``mass`` folder: Table 4, the paper's beside it, Figures 11 and 12.

    Parameters
    ----------
    table4 : pandas.DataFrame
        Our Table 4 (:func:`spiralarms.science.statistics.table4` rows of every source).
    summary : mapping
        ``summary.json`` content (sources, match, catalogue).
    paper : pandas.DataFrame, optional
        The paper's Table 4 in the same columns; shown for the sources it has.
    folder : path
    """
    folder = Path(folder)
    lines = ["# Stellar mass and arm number (the paper's section 6, Table 4)", ""]
    for source in summary.get("sources", []):
        matched = source.get("matched", source.get("n_matched"))
        lines.append(f"- `{source.get('name')}`: {source.get('n', source.get('rows', '?'))} galaxies, "
                     f"{matched if matched is not None else '?'} matched to the stellar-mass catalogue")
    match = summary.get("match", {})
    lines += ["", f"Matching: {match.get('method', '?')}, tolerance {match.get('tolerance_arcsec', '?')} arcsec.", ""]
    paper = paper if paper is not None else pd.DataFrame(columns=["source"])
    for source, ours in table4.groupby("source", sort=False):
        theirs = paper[paper["source"].str.lower() == _paper_source(str(source))]
        lines += [f"## Table 4: {source}", "", _table4_lines(ours, theirs), ""]
        if len(theirs):
            lines += [f"Beside ours: the paper's Table 4 for its {theirs['source'].iloc[0]} rows.", ""]
    for name, caption in (("figure11.png", "Figure 11: stellar-mass histograms per class"),
                          ("figure12.png", "Figure 12: violin plots per class")):
        if (folder / name).is_file():
            lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    lines += ["Data: `table4.csv`, `matched.parquet` (every matched galaxy), `unmatched.csv` (with reasons), "
              "`summary.json`.", ""]
    return "\n".join(lines)


def _paper_source(name: str) -> str:
    """The paper's source a source name stands for (``labels``, ``b0``, ``v2m``), or ``""``."""
    lower = name.lower()
    if lower in ("labels", "label", "gz2"):
        return "labels"
    return next((key for key in ("b0", "v2m") if key in lower), "")


def _table4_lines(ours: pd.DataFrame, theirs: pd.DataFrame) -> str:
    """One source's Table 4 rows, with the paper's n, K-S and t beside them where it has them."""
    frame = pd.DataFrame({
        "m": ours["class"].to_numpy(),
        "n": ours["n"].to_numpy(),
        "K-S D": ours["ks_stat"].to_numpy(),
        "K-S p": ours["ks_p"].to_numpy(),
        "t": ours["t_stat"].to_numpy(),
        "t p (two-sided)": ours["t_p_two_sided"].to_numpy(),
        "Welch p (one-sided)": ours["welch_p_one_sided"].to_numpy(),
    })
    if len(theirs):
        paper = theirs.set_index("class").reindex(frame["m"])
        frame["paper n"] = paper["n"].to_numpy()
        frame["paper K-S D"] = paper["ks_stat"].to_numpy()
        frame["paper K-S p"] = paper["ks_p"].to_numpy()
        frame["paper t p"] = paper["t_p_two_sided"].to_numpy()
    return _table(frame)


def _table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def _cell(value) -> str:
    if isinstance(value, float):
        return "n/a" if value != value else f"{value:.4f}"
    return str(value)


def write_report_html(folder: str | os.PathLike, kind: str, *, title: str, markdown: str | None = None) -> Path:
    """Write ``folder/report.md`` (when ``markdown`` is given) and render ``folder/report.html``.

    Parameters
    ----------
    folder : path
    kind : {"demo", "reproduce", "explain", "mass"}
        Chooses the "how to read this" box.
    title : str
    markdown : str, optional
        The page's Markdown; ``None`` renders the ``report.md`` already there.

    Returns
    -------
    pathlib.Path
        ``report.html``.
    """
    folder = Path(folder)
    if markdown is not None:
        write_text(folder / "report.md", markdown)
    return write_html_report(folder, title=title, how_to_read=HOW_TO_READ[kind])
