"""Markdown tables of evaluation metrics (per-class precision, recall, F1, support)."""

from __future__ import annotations


def metrics_markdown(metrics: dict) -> str:
    """A Markdown table of per-class precision, recall, F1 and support.

    Parameters
    ----------
    metrics : dict
        A ``metrics.json`` dict.

    Returns
    -------
    str
        The table, followed by accuracy and macro F1 lines.
    """
    lines = [
        "| class | precision | recall | F1 | support |",
        "|:--|--:|--:|--:|--:|",
    ]
    for name in metrics["classes"]:
        row = metrics["per_class"][name]
        lines.append(
            f"| m={name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['f1']:.3f} | {row['support']} |"
        )
    total = sum(metrics["per_class"][c]["support"] for c in metrics["classes"])
    lines.append(f"| **all** | | | **{metrics['macro_f1']:.3f}** (macro) | {total} |")
    lines.append("")
    lines.append(f"Accuracy: {metrics['accuracy']:.3f}. Macro F1: {metrics['macro_f1']:.3f}.")
    ordinal = metrics.get("ordinal")
    if ordinal and ordinal.get("n"):
        lines.append(
            f"Arm number (counted classes, 5+ as 5, {ordinal['n']} galaxies): mean absolute error "
            f"{ordinal['mean_abs_error']:.3f}, within one arm {100 * ordinal['within_one']:.1f} %."
        )
    calibration = metrics.get("calibration")
    if calibration:
        lines.append(
            f"Calibration: expected calibration error {calibration['ece_before']:.3f}; after temperature "
            f"scaling (T = {calibration['temperature']:.2f}, cross-fitted) {calibration['ece_after']:.3f}."
        )
    return "\n".join(lines) + "\n"
