"""The reproduction report: ``report.md``, ``table3.csv`` and Figures 5, 6, 7 and 13.

Everything is computed from ``runs.csv`` and the run folders (``metrics.json`` for
Figure 7, ``split.csv`` and ``val_predictions.csv`` for the validation-set checks and
Figure 13), so a report can be rewritten without training. It opens with every
remaining departure from the paper and its reason, and a table of the split sizes
against the paper's; then the sections follow the paper's order (4.2.1, 4.2.2, 5.1,
5.2, 6), each table under a sentence naming its protocol (where the cap applied,
whether the split was shared), each result next to the paper's published numbers
(:mod:`spiralarms.experiments.paper`) and the difference.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from spiralarms import __version__
from spiralarms.catalog.classes import ARM_CLASSES
from spiralarms.errors import SpiralArmsError
from spiralarms.experiments import backbone_comparison, class_configs, crop_sweep, downsampling
from spiralarms.experiments.figures import (
    FIGURE13_PREDICTED,
    FIGURE13_TRUE,
    figure13_galaxies,
    plot_figure6,
    plot_figure13,
)
from spiralarms.experiments.paper import CLASS_COUNTS, CROP_CHOICE, DOWNSAMPLED_COUNTS, PAPER, PAPER_CLASSES
from spiralarms.experiments.protocol import (
    cap_words,
    class_counts,
    paper_split_cells,
    shared_validation,
    split_size_rows,
    split_words,
)
from spiralarms.experiments.runner import read_run_table
from spiralarms.io.atomic import save_figure
from spiralarms.io.run_folder import RunFolder
from spiralarms.io.tables import write_table

__all__ = ["ReportSettings", "STANDING_DEPARTURES", "departures", "plot_figure5", "write_report", "format_value"]


@dataclass
class ReportSettings:
    """What the report needs to know beyond ``runs.csv``.

    Attributes
    ----------
    name : str
        The reproduction's name.
    f1 : str
        The crop sweep's F1 (see :class:`~spiralarms.experiments.crop_sweep.CropSweepConfig`).
    sweep_classes : tuple of str
        The two classes of the sweep's binary task.
    sweep_per_class : int or None
        Galaxies per class of the sweep's subset.
    downsampling_model : str
        The model of Table 3 trained on all data and down-sampled.
    compare : tuple of str
        Models shown down-sampled beside it.
    models : tuple of str or None
        Model order; ``None``: order of appearance in ``runs.csv``.
    merges : tuple of str
        Figure 7's column order.
    data : str or None
        One sentence on the data source.
    notes : tuple of str
        Sentences listed under "Notes" (what a reduced configuration changes).
    sweep_split : {"shared", "per_run"}
        How the crop sweep's runs were split.
    sweep_crops_published : bool
        Whether the sweep's crop sizes are the paper's (they are not printed).
    source_kind : {"catalog", "synthetic"}
        The data source.
    vote_table : str or None
        The GZ2 vote table of a ``spiralarms data gz2`` folder (``willett13``,
        ``hart16``), where its manifest names it.
    figure13_model : str
        The model whose misclassified m = 2 galaxies Figure 13 shows (the paper: V2M).
    """

    name: str = "paper"
    f1: str = "macro"
    sweep_classes: tuple[str, ...] = ("2", "3")
    sweep_per_class: int | None = None
    downsampling_model: str = "B0"
    compare: tuple[str, ...] = ("V2M",)
    models: tuple[str, ...] | None = None
    merges: tuple[str, ...] = ("all", "3,4", "4,5+")
    data: str | None = None
    notes: tuple[str, ...] = ()
    sweep_split: str = "shared"
    sweep_crops_published: bool = False
    source_kind: str = "catalog"
    vote_table: str | None = None
    figure13_model: str = "V2M"

    @classmethod
    def from_config(cls, config, data: str | None = None, vote_table: str | None = None) -> "ReportSettings":
        """Settings from a :class:`~spiralarms.experiments.settings.ReproduceConfig`."""
        return cls(
            config.name,
            f1=config.crop_sweep.f1,
            sweep_classes=tuple(config.crop_sweep.classes),
            sweep_per_class=config.crop_sweep.per_class,
            downsampling_model=config.downsampling.model,
            compare=tuple(config.downsampling.compare),
            models=tuple(config.models),
            merges=tuple(class_configs.merge_name(m) for m in config.class_configs.merges),
            data=data,
            notes=tuple(config.notes),
            sweep_split=config.crop_sweep.split,
            source_kind=config.source.kind,
            vote_table=vote_table,
        )


def format_value(value: Any, digits: int = 3, percent: bool = False, signed: bool = False) -> str:
    """A table cell: a rounded number, a percentage, or an en dash for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "–"
    if percent:
        number *= 100.0
    text = f"{number:+.{digits}f}" if signed else f"{number:.{digits}f}"
    return text + (" %" if percent else "")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> str:
    align = align or ("l" + "r" * (len(header) - 1))
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def plot_figure5(statistics: pd.DataFrame, chosen: Mapping[str, int], paper: Mapping[str, Mapping] = CROP_CHOICE):
    """Figure 5: mean F1 with its standard deviation, and CV, against crop size.

    Parameters
    ----------
    statistics : pandas.DataFrame
        :func:`~spiralarms.experiments.crop_sweep.crop_statistics` output.
    chosen : mapping of str to int
        The chosen crop per model (marked by a dotted vertical line).
    paper : mapping
        The paper's chosen point per model (drawn as open stars: F1 on the left
        axis, CV on the right).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    twin = ax.twinx()
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(pd.unique(statistics["model"])):
        colour = colours[i % len(colours)]
        part = statistics[statistics["model"] == model].sort_values("crop")
        ax.errorbar(part["crop"], part["mean"], yerr=part["std"], color=colour, marker="o", capsize=3,
                    label=f"{model} F1")
        twin.plot(part["crop"], part["cv_percent"], color=colour, marker="s", linestyle="--", alpha=0.8,
                  label=f"{model} CV")
        if model in chosen:
            ax.axvline(chosen[model], color=colour, linestyle=":", linewidth=1)
        if model in paper:
            ax.plot(paper[model]["crop"], paper[model]["f1"], marker="*", markersize=12, markerfacecolor="none",
                    color=colour, linestyle="none", label=f"{model} F1 (paper)")
            twin.plot(paper[model]["crop"], paper[model]["cv_percent"], marker="*", markersize=12,
                      markerfacecolor="none", markeredgecolor=colour, linestyle="none", alpha=0.6,
                      label=f"{model} CV (paper)")
    ax.set_xlabel("crop size (pixels)")
    ax.set_ylabel("F1 (mean ± standard deviation)")
    twin.set_ylabel("CV = σ / μ (%)")
    handles, labels = ax.get_legend_handles_labels()
    handles2, labels2 = twin.get_legend_handles_labels()
    ax.legend(handles + handles2, labels + labels2, fontsize=8, loc="best")
    ax.set_title("Selection of image size (dotted: chosen, lowest CV; stars: the paper)")
    fig.tight_layout()
    return fig


def _models(runs: pd.DataFrame, settings: ReportSettings) -> list[str]:
    present = list(pd.unique(runs["model"])) if len(runs) else []
    if settings.models is None:
        return present
    return [m for m in settings.models if m in present] + [m for m in present if m not in settings.models]


def _describe_models(runs: pd.DataFrame, models: Sequence[str]) -> list[str]:
    lines = []
    for model in models:
        row = runs[runs["model"] == model].iloc[0]
        frozen = row.get("frozen")
        how = {True: "frozen backbone (head trained)", False: "all layers trained"}.get(
            frozen if isinstance(frozen, bool) else {"True": True, "False": False}.get(str(frozen)),
            "backbone's default training",
        )
        lines.append(f"- **{model}**: `{row['backbone']}`, {how}.")
    return lines


def _sweep_section(runs: pd.DataFrame, settings: ReportSettings, out: Path) -> tuple[list[str], dict[str, int]]:
    stats = crop_sweep.crop_statistics(runs, settings.f1)
    if stats.empty:
        return ["## 4.2.1 Selection of image size (Figure 5)", "", "Not run.", ""], {}
    chosen = crop_sweep.choose_crop(stats)
    fig = plot_figure5(stats, chosen)
    save_figure(fig, out / "figure5.png", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    write_table(stats, out / "figure5.csv")
    which = "macro F1 (mean of the two classes' F1)" if settings.f1 == "macro" else f"F1 of class m = {settings.f1}"
    per_class = (
        f"at most {settings.sweep_per_class} galaxies per class" if settings.sweep_per_class else "a balanced subset"
    )
    part = runs[runs["experiment"] == crop_sweep.EXPERIMENT]
    shared = part["split_seed"].nunique(dropna=False) == 1
    lines = [
        "## 4.2.1 Selection of image size (Figure 5)",
        "",
        f"Binary task m = {' vs m = '.join(settings.sweep_classes)}, {per_class} (70:30 split), one run per seed "
        f"and crop size. F1 is the {which} on the validation set; σ is the sample standard deviation over runs "
        "and CV = σ / μ, in percent as the paper prints it. The chosen size has the lowest CV (the paper's rule).",
        "",
        f"Protocol: the subset {cap_words(part.iloc[0])}; {split_words(part)}"
        + ("; the runs of a size differ in their training seed only (initialisation, shuffling, augmentation: "
           "the paper's \"same training configuration\")." if shared else
           "; each run's seed draws its split as well as its initialisation, shuffling and augmentation "
           "(`crop_sweep.split=per_run`; the paper keeps \"the same training configuration\")."),
        "",
    ]
    rows = []
    for _, r in stats.iterrows():
        mark = "**chosen**" if chosen.get(r["model"]) == r["crop"] else ""
        rows.append([r["model"], int(r["crop"]), int(r["n"]), format_value(r["mean"], 4), format_value(r["std"], 4),
                     format_value(r["cv_percent"], 3), mark])
    lines += [_table(["model", "crop", "runs", "mean F1", "σ", "CV (%)", ""], rows, "lrrrrrl")]
    rows = []
    for model, crop in chosen.items():
        ours = stats[(stats["model"] == model) & (stats["crop"] == crop)].iloc[0]
        paper = CROP_CHOICE.get(model)
        at224 = stats[(stats["model"] == model) & (stats["crop"] == 224)]
        f1_224 = float(at224["mean"].iloc[0]) if len(at224) else float("nan")
        rows.append([
            model,
            f"{crop} / {paper['crop'] if paper else '–'}",
            format_value(ours["mean"], 4), format_value(paper["f1"] if paper else None, 4),
            format_value(ours["mean"] - paper["f1"] if paper else None, 4, signed=True),
            format_value(ours["cv_percent"], 3), format_value(paper["cv_percent"] if paper else None, 3),
            format_value(ours["cv_percent"] - paper["cv_percent"] if paper else None, 3, signed=True),
            format_value(f1_224, 4),
        ])
    lines += [
        "Against the paper (section 4.2.1: 224 for both models; B0 F1 0.9111 with CV 2.203 %, V2M F1 0.9232 "
        "with CV 2.124 %):",
        "",
        _table(["model", "chosen crop (ours / paper)", "F1 ours", "F1 paper", "Δ F1", "CV % ours", "CV % paper",
                "Δ CV", "our F1 at 224"], rows),
        "![Figure 5: F1 and CV against crop size](figure5.png)",
        "",
        "Values: `figure5.csv`.",
        "",
    ]
    return lines, chosen


def _table3_section(runs: pd.DataFrame, settings: ReportSettings, out: Path) -> list[str]:
    part = runs[runs["experiment"] == downsampling.EXPERIMENT]
    if part.empty:
        return ["## 4.2.2 Number of images (Table 3)", "", "Not run.", ""]
    model = settings.downsampling_model
    compare = [m for m in settings.compare if m != model and m in set(part["model"])]
    table = downsampling.table3(runs, model, compare)
    write_table(table, out / "table3.csv")
    columns = [(model, "all"), (model, "down")] + [(m, "down") for m in compare]
    metrics = ("precision", "recall", "f1")
    header = ["m"] + [f"{label} {'all' if d == 'all' else 'down'} {short}" for label, d in columns[:2]
                      for short in ("P", "R", "F1")]
    header += ["Δ F1 (relative)"] + [f"{label} down {short}" for label, _ in columns[2:] for short in ("P", "R", "F1")]

    def block(prefix: str, change: str) -> list[list[str]]:
        rows = []
        for _, r in table.iterrows():
            cells = [f"m={r['m']}"]
            cells += [format_value(r[f"{prefix}{label}_{d}_{m}"]) for label, d in columns[:2] for m in metrics]
            cells += [format_value(r[change], 1, percent=True, signed=True)]
            cells += [format_value(r[f"{prefix}{label}_{d}_{m}"]) for label, d in columns[2:] for m in metrics]
            rows.append(cells)
        return rows

    diff = table.copy()
    for label, d in columns:
        for m in metrics:
            diff[f"diff_{label}_{d}_{m}"] = pd.to_numeric(table[f"{label}_{d}_{m}"], errors="coerce") - pd.to_numeric(
                table[f"paper_{label}_{d}_{m}"], errors="coerce")
    diff["diff_f1_change"] = pd.to_numeric(table["f1_change"], errors="coerce") - pd.to_numeric(
        table["paper_f1_change"], errors="coerce")
    diff_rows = []
    for _, r in diff.iterrows():
        cells = [f"m={r['m']}"]
        cells += [format_value(r[f"diff_{label}_{d}_{m}"], signed=True) for label, d in columns[:2] for m in metrics]
        cells += [format_value(r["diff_f1_change"], 1, percent=True, signed=True)]
        cells += [format_value(r[f"diff_{label}_{d}_{m}"], signed=True) for label, d in columns[2:] for m in metrics]
        diff_rows.append(cells)

    sizes = []
    for setting in (downsampling.ALL_DATA, downsampling.DOWN_SAMPLED):
        rows = part[(part["model"] == model) & (part["setting"] == setting)]
        if len(rows):
            sizes.append(f"{setting}: {int(rows.iloc[0]['n_train'])} training and {int(rows.iloc[0]['n_val'])} "
                         "validation galaxies")
    align = "l" + "r" * (len(header) - 1)
    return [
        "## 4.2.2 Number of images (Figure 6, Table 3)",
        "",
        *_figure6_lines(part, model, out),
        f"{model} trained on all data and on data down-sampled to at most "
        f"{_cap(part, model)} images per class"
        + (f"; {', '.join(compare)} down-sampled for comparison (section 5.1)" if compare else "")
        + ". Validation precision (P), recall (R) and F1 per class; Δ F1 is the relative change "
        "(down − all) / all, the paper's \"Diff. in F1-Score\"."
        + (f" Sizes: {'; '.join(sizes)}." if sizes else ""),
        "",
        _table3_protocol(part, model, out),
        "",
        "Ours:",
        "",
        _table(header, block("", "f1_change"), align),
        "The paper's Table 3:",
        "",
        _table(header, block("paper_", "paper_f1_change"), align),
        "Difference (ours − paper):",
        "",
        _table(header, diff_rows, align),
        "Values: `table3.csv` (ours, then the paper's with a `paper_` prefix).",
        "",
    ]


def _table3_protocol(part: pd.DataFrame, model: str, out: Path) -> str:
    """The protocol sentence under Table 3: each set split after its own down-sampling."""
    words = []
    for setting in (downsampling.ALL_DATA, downsampling.DOWN_SAMPLED):
        rows = part[(part["model"] == model) & (part["setting"] == setting)]
        if len(rows):
            words.append(f"{setting} run: {cap_words(rows.iloc[0])} (split seed {rows.iloc[0]['split_seed']})")
    runs_text = "; ".join(words)
    runs_text = runs_text[:1].upper() + runs_text[1:]
    down = part[part["setting"] == downsampling.DOWN_SAMPLED]
    compared = shared_validation(out, down)
    return (
        "Protocol: as the paper, each set is split after its own down-sampling, so the all-data and the "
        "down-sampled columns are validated on different galaxies (the all-data validation set keeps the natural "
        f"class mix). {runs_text}."
        + (f" Down-sampled runs of the models compared: {compared}" if compared else "")
    )


def _figure6_lines(part: pd.DataFrame, model: str, out: Path) -> list[str]:
    """Figure 6 from the down-sampling runs' class counts, with the paper's beside."""
    sets = {}
    for setting, name in ((downsampling.ALL_DATA, "full"), (downsampling.DOWN_SAMPLED, "down-sampled")):
        rows = part[(part["model"] == model) & (part["setting"] == setting)]
        if not len(rows):
            continue
        counts = class_counts(rows.iloc[0])
        if name == "down-sampled" and str(rows.iloc[0].get("cap_scope")) == "train":
            sets["down-sampled training pool"] = {c: t for c, (_, t) in counts.items()}
        else:
            sets[name] = {c: v + t for c, (v, t) in counts.items()}
    if not sets:
        return []
    classes = [c for c in PAPER_CLASSES if any(c in counts for counts in sets.values())]
    fig = plot_figure6(sets, {"full": CLASS_COUNTS, "down-sampled": DOWNSAMPLED_COUNTS}, classes)
    save_figure(fig, out / "figure6.png", dpi=100)
    rows = [[name, *[counts.get(c, 0) for c in classes], sum(counts.values())] for name, counts in sets.items()]
    rows += [[f"paper, {name}", *[counts[c] for c in classes], sum(counts[c] for c in classes)]
             for name, counts in (("full", CLASS_COUNTS), ("down-sampled", DOWNSAMPLED_COUNTS))]
    return [
        "Galaxies per class of the full set and of the down-sampled set (every class capped; the majority classes "
        "randomly sub-sampled), ours and the paper's (section 2.1's counts, capped at 300):",
        "",
        _table(["set", *[f"m={c}" for c in classes], "all"], rows),
        "![Figure 6: class counts of the full and down-sampled sets](figure6.png)",
        "",
    ]


def _cap(part: pd.DataFrame, model: str) -> str:
    rows = part[(part["model"] == model) & (part["setting"] == downsampling.DOWN_SAMPLED)]
    return str(int(rows.iloc[0]["cap"])) if len(rows) and pd.notna(rows.iloc[0]["cap"]) else "?"


def _backbones_section(runs: pd.DataFrame, models: Sequence[str], out: Path) -> list[str]:
    part = runs[runs["experiment"] == backbone_comparison.EXPERIMENT]
    if part.empty:
        return ["## 5.1 Model comparison", "", "Not run.", ""]
    present = [m for m in models if m in set(part["model"])]
    table = backbone_comparison.model_comparison(runs, present)
    header = ["m"]
    for m in present:
        header += [f"{m} P", f"{m} R", f"{m} F1", f"{m} F1 paper", f"{m} Δ F1"]
    rows = []
    for _, r in table.iterrows():
        cells = ["macro F1" if r["m"] == "macro" else f"m={r['m']}"]
        for m in present:
            cells += [format_value(r[f"{m}_precision"]), format_value(r[f"{m}_recall"]), format_value(r[f"{m}_f1"]),
                      format_value(r[f"{m}_paper_f1"]), format_value(r[f"{m}_f1_difference"], signed=True)]
        rows.append(cells)
    accuracy = ", ".join(
        f"{m} {format_value(part[part['model'] == m].iloc[0]['accuracy'])}" for m in present
    )
    return [
        "## 5.1 Model comparison",
        "",
        "Each model trained on the down-sampled six-class data; validation precision (P), recall (R) and F1, with "
        "the paper's F1 (Table 3, down-sampled columns; its macro F1 is the mean of those six values) and the "
        f"difference. Accuracy: {accuracy}.",
        "",
        f"Protocol: the six-class set {cap_words(part.iloc[0])}; {split_words(part)}. "
        + shared_validation(out, part),
        "",
        _table(header, rows),
    ]


def _figure7_section(runs: pd.DataFrame, settings: ReportSettings, models: Sequence[str], out: Path) -> list[str]:
    part = runs[runs["experiment"] == class_configs.EXPERIMENT]
    if part.empty:
        return ["## 5.2 Class combination (Figure 7)", "", "Not run.", ""]
    matrices = class_configs.confusion_matrices(runs, out)
    present = [m for m in models if m in set(part["model"])]
    merges = [m for m in settings.merges if m in {k[1] for k in matrices}]
    merges += sorted({k[1] for k in matrices} - set(merges))
    fig = class_configs.plot_figure7(matrices, present, merges)
    save_figure(fig, out / "figure7.png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(fig)
    claims = class_configs.check_claims(matrices)
    rows = []
    for _, c in claims.iterrows():
        rows.append([c["model"], c["config"], c["cell"], c["paper"], format_value(c["ours"]),
                     format_value(c["difference"], signed=True), "yes" if c["holds"] else "no", c["source"]])
    diagonal = []
    for (model, merge), entry in matrices.items():
        values = [f"m={name}: {entry['normalised'][i, i]:.2f}" for i, name in enumerate(entry["classes"])]
        diagonal.append([model, merge, ", ".join(values)])
    checks = " ".join(
        f"{model}: {shared_validation(out, part[part['model'] == model])}" for model in present
        if (part["model"] == model).sum() > 1
    )
    lines = [
        "## 5.2 Class combination (Figure 7)",
        "",
        "Row-normalised validation confusion matrices (rows: label, columns: prediction) of each model "
        "(rows of the figure) in each class configuration (columns: all classes, 3,4 merged, 4,5+ merged).",
        "",
        f"Protocol: the six-class set {cap_words(part.iloc[0])}; {split_words(part)}; a merge relabels the "
        "galaxies of that split (the cap and the strata are the six classes), so every configuration is "
        f"validated on the same galaxies. {checks}",
        "",
        "![Figure 7: confusion matrices](figure7.png)",
        "",
        "Recall per class (the diagonal):",
        "",
        _table(["model", "configuration", "diagonal"], diagonal, "lll"),
    ]
    if rows:
        lines += [
            "The paper's statements about Figure 7 (its cells are not printed as numbers; `=` holds within 0.05):",
            "",
            _table(["model", "configuration", "cell", "paper", "ours", "Δ", "holds", "source"], rows, "lllrrrll"),
        ]
    return lines


def _figure13_section(runs: pd.DataFrame, settings: ReportSettings, out: Path) -> list[str]:
    """Figure 13: the m = 2 validation galaxies a model predicts as m = 1 and as m = 3."""
    title = "## 6 Misclassified m = 2 galaxies (Figure 13)"
    six = runs[(runs["experiment"].isin([backbone_comparison.EXPERIMENT, class_configs.EXPERIMENT]))
               & (runs["merge"].astype(str) == "all")]
    if six.empty:
        return [title, "", "Not run (it uses the six-class runs of section 5.1 or 5.2).", ""]
    preferred = six[six["model"] == settings.figure13_model]
    row = (preferred if len(preferred) else six).iloc[0]
    predictions = read_run_table(out, str(row["run_dir"]), RunFolder.VAL_PREDICTIONS)
    split = read_run_table(out, str(row["run_dir"]), RunFolder.SPLIT)
    if predictions is None or split is None:
        return [title, "", f"Not available: {row['run_dir']} has no val_predictions.csv or split.csv.", ""]
    try:
        chosen = figure13_galaxies(predictions, split)
        fig = plot_figure13(chosen, int(row["crop"]), str(row["model"]))
    except SpiralArmsError as exc:  # a moved or unreadable image must not lose the rest of the report
        return [title, "", f"Not available: {exc}", ""]
    save_figure(fig, out / "figure13.png", dpi=100)
    n_true = int((predictions["label"].astype(str) == FIGURE13_TRUE).sum())
    counts = ", ".join(f"{chosen[p].attrs['total']} as m={p}" for p in FIGURE13_PREDICTED)
    substitute = "" if row["model"] == settings.figure13_model else (
        f" (no {settings.figure13_model} run: {row['model']} instead)")
    return [
        title,
        "",
        f"{row['model']}{substitute}, six classes, down-sampled ({row['experiment']} run): of its {n_true} "
        f"validation galaxies with m = {FIGURE13_TRUE}, it predicts {counts}; the most confident of each are "
        "shown (centre crop the model saw, probability of the wrong class). The paper draws its examples from "
        "the predictions over its whole sample (section 6); these are validation galaxies.",
        "",
        "![Figure 13: m = 2 galaxies predicted as 1 and as 3](figure13.png)",
        "",
    ]


#: Departures that every reproduction keeps, each with its reason.
STANDING_DEPARTURES: tuple[str, ...] = (
    "Framework: PyTorch, timm and Lightning instead of Keras and TensorFlow. Kept from Keras: Glorot-uniform "
    "head, Adam with epsilon 1e-7, EfficientNetV2-M with stochastic depth (drop-connect) 0.2; ImageNet weights "
    "of V2M are timm's port of the official TensorFlow EfficientNetV2-M checkpoint. Reason: the package is "
    "PyTorch; these are the defaults that change training.",
    "Head width 1024, not the 1028 of section 3.4: the paper's Table 2 parameter counts fit 1024 exactly "
    "(docs/training.md).",
    "Augmentation order: rotation and zoom are applied to the 424-pixel frame before the centre crop, "
    "so no filled corner reaches the crop; the paper's Figure 2 crops first and Keras fills the corners by "
    "reflection. Reason: real sky instead of reflected pixels; the paper's order, with Keras' reflect fill, "
    "is `build_train_transform(augment_before_crop=False)` (docs/training.md).",
    "Figure 13 shows validation galaxies; the paper's come from its predictions over the whole sample of "
    "section 6. Reason: a reproduction run predicts its validation set only.",
)


def departures(runs: pd.DataFrame, settings: ReportSettings) -> list[str]:
    """Every remaining departure from the paper that affects this report, with its reason.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv``.
    settings : ReportSettings

    Returns
    -------
    list of str
        One sentence (or a few) per departure: what differs, which result it
        affects, and why.
    """
    items = []
    if settings.source_kind == "synthetic":
        items.append("Data: synthetic galaxies, not GZ2 (see the notes): the numbers test the pipeline and are not "
                     "comparable with the paper's.")
    elif settings.vote_table == "hart16":
        items.append("Vote table: Hart et al. (2016), whose debiasing the paper says it does not use (section 2); "
                     "`spiralarms data gz2 ROOT` without `--table hart16` fetches the paper's Willett et al. "
                     "(2013) zoo2MainSpecz table.")
    else:
        items.append("Vote table: the cuts of section 2.1 are expected to give the paper's 11,718 galaxies on the "
                     "Willett et al. (2013) zoo2MainSpecz table (the default of `spiralarms data gz2`); this was "
                     "not verified offline. Compare the full set of Figure 6 with the paper's.")
    backbones_used = set(runs["backbone"].astype(str))
    if "zoobot-b0" in backbones_used:
        items.append("B0 weights: the paper's B0 is the greyscale GZ DECaLS EfficientNet-B0 of Walmsley et al. "
                     "(2022), which is not on the Hugging Face hub; ours is Zoobot's colour EfficientNet-B0 encoder "
                     "(`mwalmsley/zoobot-encoder-efficientnet_b0`, unless `model.weights` gave a file), its first "
                     "convolution summed over the colour channels to take one grey channel. That encoder was "
                     "trained on a mix of Galaxy Zoo campaigns that includes GZ2: a frozen feature extractor that "
                     "has seen these labels' images, which may flatter every B0 number.")
    cached = runs[pd.to_numeric(runs["cache_views"], errors="coerce").fillna(0) > 0]
    if len(cached):
        views = sorted({int(v) for v in cached["cache_views"]})
        items.append(f"Frozen-backbone runs ({', '.join(dict.fromkeys(cached['model'].astype(str)))}) trained the "
                     f"head on {' or '.join(map(str, views))} cached augmented views per training image, reused in "
                     "turn, instead of a fresh augmentation every epoch. Reason: the backbone runs once per view, "
                     "not once per epoch; the measured effect on macro F1 is in docs/training.md "
                     "(benchmarks/bench_cache_accuracy.py).")
    if (runs["cap_scope"].astype(str) == "train").any():
        names = ", ".join(dict.fromkeys(runs.loc[runs["cap_scope"].astype(str) == "train", "experiment"]))
        items.append(f"Cap on the training pool only (`data.cap_scope=train`) in {names}: validation keeps the "
                     "natural class mix, unlike the paper's (cap, then split).")
    if settings.sweep_split == "per_run" and (runs["experiment"] == crop_sweep.EXPERIMENT).any():
        items.append("Crop sweep: each run draws its own split (`crop_sweep.split=per_run`); the paper repeats "
                     "\"the same training configuration\", so CV includes split variation here.")
    if (runs["experiment"] == crop_sweep.EXPERIMENT).any():
        if not settings.sweep_crops_published:
            items.append("Crop sizes of Figure 5: the paper does not print them; this sweep's grid is its own.")
        if settings.f1 == "macro":
            items.append("Crop sweep F1: the macro F1 of the binary task; the paper does not say which F1 it plots.")
    return items + list(STANDING_DEPARTURES)


#: Where the recipe comparison (``benchmarks/bench_recipes.py --out OUT/recipes``) leaves its table.
RECIPES_TABLE = Path("recipes") / "recipes.md"


def _beyond_section(out: Path) -> list[str]:
    """Beyond the paper: the imbalance and label recipes against the paper's down-sampling."""
    lines = ["## 7 Beyond the paper: rare classes, soft labels, calibration", ""]
    lines += ["The paper answers the imbalance of its classes (m = 4: 28 of 11,718 galaxies) by down-sampling "
              "to 300 per class. The options `train.loss=weighted|focal`, `train.sampler=balanced`, "
              "`train.soft_labels=true` keep every galaxy; `train.calibrate=true` fits a softmax temperature that "
              "`predict` applies. Each recipe is compared on the same validation galaxies, in the data's own "
              "class proportions, over several seeds (mean ± standard deviation).", ""]
    table = out / RECIPES_TABLE
    if table.is_file():
        lines += [table.read_text(encoding="utf-8").strip(), ""]
    else:
        lines += [f"Not run on this data yet: `python benchmarks/bench_recipes.py --catalog CATALOG --out {out / 'recipes'}` "
                  "writes the table here (then rerun this command; finished runs are reused). "
                  "On GZ2-proportioned synthetic galaxies, see docs/beyond-the-paper.md.", ""]
    return lines


def _split_sizes_lines(runs: pd.DataFrame) -> list[str]:
    order = (crop_sweep.EXPERIMENT, downsampling.EXPERIMENT, backbone_comparison.EXPERIMENT, class_configs.EXPERIMENT)
    rows = split_size_rows(runs, order)
    if not rows:
        return []
    rows.append(["paper (expected)", "down-sampled", "B0, V2M", "300", "whole set, before the split", "–",
                 paper_split_cells(), "30 %"])
    return [
        "## Protocol and split sizes",
        "",
        "Each distinct split of this reproduction: where the cap applied, the split seed, and per class the "
        "validation galaxies over all galaxies of the set (validation + training). The paper caps every class at "
        "300, then splits 70:30: its validation set holds about 30 % of each capped class (last row: 30 % of "
        "section 2.1's counts capped at 300).",
        "",
        _table(["experiment", "setting", "models", "cap", "cap applies to", "split seed",
                "validation / set, per class", "validation share"], rows, "llllllll"),
    ]


def write_report(
    runs: pd.DataFrame,
    out: str | os.PathLike,
    settings: ReportSettings | None = None,
    summary: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the report folder from a runs table.

    Parameters
    ----------
    runs : pandas.DataFrame
        ``runs.csv`` (:func:`~spiralarms.experiments.runner.read_runs`).
    out : path-like
        The reproduction folder (the runs' ``run_dir`` are relative to it).
    settings : ReportSettings, optional
    summary : mapping, optional
        ``n_trained``, ``n_cached``, ``seconds`` of the reproduction that produced
        ``runs``, for the header.

    Returns
    -------
    dict of str to Path
        The files written: ``report`` and, where their experiment ran, ``table3``,
        ``figure5``, ``figure6``, ``figure7``, ``figure13``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = settings or ReportSettings()
    models = _models(runs, settings)
    unique = runs.drop_duplicates(subset=["run_key"])
    training_hours = float(pd.to_numeric(unique["wall_seconds"], errors="coerce").sum()) / 3600.0
    lines = [
        f"# Reproduction of sections 4 and 5 (and Figure 13 of section 6) of {PAPER}",
        "",
        f"spiralarms {__version__}, configuration `{settings.name}`."
        + (f" Data: {settings.data}" if settings.data else ""),
        "",
        "Models:",
        "",
        *_describe_models(runs, models),
        "",
        f"{len(unique)} training runs ({len(runs)} rows of `runs.csv`: a run used by several experiments appears "
        f"once per experiment); training time {training_hours * 60:.1f} min in all.",
    ]
    if summary:
        lines[-1] += (f" This reproduction trained {summary.get('n_trained', 0)} runs, found "
                      f"{summary.get('n_cached', 0)} finished, and took {summary.get('seconds', 0.0) / 60:.1f} min.")
    lines.append("")
    if settings.notes:
        lines += ["Notes:", "", *[f"- {note}" for note in settings.notes], ""]
    lines += ["## Departures from the paper", "",
              "Every difference from the paper's protocol that remains in this report, and why:", "",
              *[f"- {item}" for item in departures(runs, settings)], ""]
    lines += _split_sizes_lines(runs)

    sweep_lines, _ = _sweep_section(runs, settings, out)
    lines += sweep_lines
    lines += _table3_section(runs, settings, out)
    lines += _backbones_section(runs, models, out)
    lines += _figure7_section(runs, settings, models, out)
    lines += _figure13_section(runs, settings, out)
    lines += _beyond_section(out)
    per_experiment = []
    for name in (crop_sweep.EXPERIMENT, downsampling.EXPERIMENT, backbone_comparison.EXPERIMENT, class_configs.EXPERIMENT):
        part = runs[runs["experiment"] == name]
        if len(part):
            seconds = pd.to_numeric(part.drop_duplicates("run_key")["wall_seconds"], errors="coerce").sum()
            per_experiment.append([name, len(part), f"{seconds / 60:.1f}"])
    lines += [
        "## Runs and files",
        "",
        _table(["experiment", "runs", "training time (min)"], per_experiment),
        "- `runs.csv`: one row per run of an experiment: setting, model, seed, crop, per-class precision, recall, "
        "F1 and support, macro F1, accuracy, wall time, status (trained, resumed, cached, shared), run folder and "
        "configuration hash.",
        "- `runs/<key>/`: each run folder (resolved `config.yaml`, `metrics.json`, `checkpoints/`, "
        "`val_predictions.csv`); `<key>` is the hash of the resolved configuration (with the crop sweep's subset).",
        "- `table3.csv`, `figure5.csv`, `figure5.png`, `figure6.png`, `figure7.png`, `figure13.png`: the tables "
        "and figures above.",
        "",
        f"Classes are the T11 answers {', '.join(ARM_CLASSES)} (m = 5+: more than four; m = ?: can't tell).",
        "",
    ]
    from spiralarms.reports.pages import write_report_html

    files = {"report": out / "report.md"}
    files["html"] = write_report_html(out, "reproduce", title="Reproduction of Lee, Soo & Sharoni", markdown="\n".join(lines))
    for key, name in (("table3", "table3.csv"), ("figure5", "figure5.png"), ("figure6", "figure6.png"),
                      ("figure7", "figure7.png"), ("figure13", "figure13.png")):
        if (out / name).is_file():
            files[key] = out / name
    return files
