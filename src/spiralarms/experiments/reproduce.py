"""Run the experiments of sections 4 and 5 and write the report folder.

:func:`run_reproduction` takes a :class:`~spiralarms.experiments.settings.ReproduceConfig`
and a folder ``OUT``, and:

1. finds the data: the configured GZ2 catalogue or prepared store, or synthetic
   galaxies rendered once into ``OUT/data`` (reused when they match);
2. builds each model's training configuration (its file, the data source, the
   reproduction's ``set``, the model's ``set``, then the caller's overrides);
3. runs the experiments in the paper's order, each run cached in ``OUT/runs/<key>``
   (:class:`~spiralarms.experiments.runner.RunCache`): the crop-size sweep, whose
   lowest-CV size becomes the crop of the later experiments (unless they fix one;
   a model not swept takes the first swept model's size), then all data against
   down-sampled, the model comparison, and the class configurations;
4. writes ``runs.csv`` after every run, so a killed reproduction leaves a readable
   table, and finally the report (:func:`~spiralarms.experiments.reproduction_report.write_report`).

Rerunning the same command trains nothing that finished and resumes what did not.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from spiralarms.acquire.gz2 import recorded_vote_table
from spiralarms.config import ExperimentConfig, load_config
from spiralarms.errors import SpiralArmsError
from spiralarms.experiments import backbone_comparison, class_configs, crop_sweep, downsampling
from spiralarms.experiments.reproduction_report import ReportSettings, write_report
from spiralarms.experiments.runner import RunCache, RunSpec, write_runs
from spiralarms.experiments.settings import ReproduceConfig, check_run_overrides
from spiralarms.io.atomic import write_text

__all__ = ["ReproductionResult", "run_reproduction", "prepare_source", "model_configs", "DATA_HINT"]

#: How to get the real data, for the error without it.
DATA_HINT = (
    "fetch the GZ2 data with 'spiralarms data gz2 ROOT' and give --catalog ROOT/catalog.parquet "
    "(or set source.catalog in the config); 'spiralarms reproduce --quick' runs on synthetic galaxies"
)


@dataclass
class ReproductionResult:
    """What a reproduction produced.

    Attributes
    ----------
    out : Path
        The report folder.
    files : dict of str to Path
        ``report``, ``runs``, and where their experiments ran ``table3``,
        ``figure5``, ``figure6``, ``figure7``, ``figure13``.
    runs : pandas.DataFrame
        ``runs.csv``.
    n_trained, n_cached : int
        Runs trained (or resumed) now, and runs found finished.
    chosen_crops : dict of str to int
        The crop-size sweep's choice per model.
    seconds : float
        Wall time.
    """

    out: Path
    files: dict[str, Path]
    runs: pd.DataFrame
    n_trained: int
    n_cached: int
    chosen_crops: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def prepare_source(config: ReproduceConfig, out: str | Path, *, progress: bool = False,
                   log: Callable[[str], Any] = print) -> tuple[Path, str]:
    """The catalogue every run reads, and a sentence describing it.

    Synthetic galaxies are rendered into ``out/data`` once; a folder that already
    holds the same set (count, seed, size, preset) is reused.

    Returns
    -------
    catalog : Path
    description : str

    Raises
    ------
    SpiralArmsError
        If the real data is not configured or not found (saying how to get it).
    """
    source = config.source
    if source.kind == "synthetic":
        from spiralarms.data.synthetic import get_preset, synthesize_dataset, synthetic_set_matches

        folder = Path(out) / "data"
        catalog = folder / "catalog.csv"
        preset = get_preset(source.preset).name
        if synthetic_set_matches(catalog, source.n_per_class, source.seed, source.size, preset):
            log(f"synthetic galaxies: reusing {catalog}")
        else:
            log(f"synthetic galaxies: rendering {6 * source.n_per_class} ({source.n_per_class} per class, "
                f"{source.size} px) into {folder}")
            synthesize_dataset(folder, n_per_class=source.n_per_class, seed=source.seed, size=source.size,
                               progress=progress, preset=preset)
        description = (f"{6 * source.n_per_class} synthetic galaxies ({source.n_per_class} per class, "
                       f"{source.size} x {source.size} px, seed {source.seed}, preset {preset}; `spiralarms synth`), "
                       "through the paper's clean-sample cuts")
    else:
        if source.catalog is None:
            raise SpiralArmsError(f"no real data configured: {DATA_HINT}")
        catalog = Path(source.catalog).expanduser()
        if not catalog.exists():
            raise SpiralArmsError(f"{catalog}: not found; {DATA_HINT}")
        description = f"`{catalog}` through the paper's clean-sample cuts"
        table = recorded_vote_table(catalog)
        if table is not None:
            description += f" (GZ2 vote table: {table})"
    if source.class_counts:
        limits = ", ".join(f"m={k}: {v}" for k, v in source.class_counts.items())
        description += f", then at most so many galaxies per class ({limits})"
    return catalog, description + "."


def _catalog_fingerprint(path: str | Path) -> str:
    """A short hash of a catalogue: a file's bytes, or a prepared store's file listing.

    Parameters
    ----------
    path : str or path-like
        A catalogue file, or a prepared store's folder (names, sizes and modification
        times of its files, which are written once and renamed into place).

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = item.stat()
            digest.update(f"{item.relative_to(path).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    else:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def model_configs(
    config: ReproduceConfig, catalog: str | Path, overrides: Iterable[str] = ()
) -> dict[str, ExperimentConfig]:
    """Each model's training configuration, with the data source and overrides applied.

    Order: the model's configuration file, ``data.catalog``, the reproduction's
    ``set``, the model's ``set``, then ``overrides``.

    Raises
    ------
    SpiralArmsError
        If an override sets a key the experiments set (:data:`~spiralarms.experiments.settings.EXPERIMENT_KEYS`),
        or a configuration is bad.
    """
    overrides = check_run_overrides(overrides, "--set")
    configs = {}
    for label, spec in config.models.items():
        items = [f"data.catalog={catalog}", *config.set, *spec.set, *overrides]
        configs[label] = load_config(config.model_config_path(label), overrides=items)
    return configs


def run_reproduction(
    config: ReproduceConfig,
    out: str | Path,
    *,
    overrides: Iterable[str] = (),
    progress: bool = False,
    log: Callable[[str], Any] = print,
) -> ReproductionResult:
    """Run the configured experiments and write the report folder.

    Parameters
    ----------
    config : ReproduceConfig
        From :func:`~spiralarms.experiments.settings.load_reproduce_config`.
    out : path-like
        The report folder: ``report.md``, ``runs.csv``, ``table3.csv``,
        ``figure5.png``, ``figure6.png``, ``figure7.png``, ``figure13.png``,
        ``reproduce.yaml`` (the settings used),
        ``runs/``, ``cache/`` and, for synthetic data, ``data/``.
    overrides : iterable of str
        ``section.key=value`` overrides of every training run, applied last (e.g.
        ``train.accelerator=gpu``).
    progress : bool, default False
        Progress bars.
    log : callable, default print
        Receives one line per step and per run.

    Returns
    -------
    ReproductionResult

    Raises
    ------
    SpiralArmsError
        Without data (saying how to get it), on bad settings, or from training.
    """
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = check_run_overrides(overrides, "--set")  # before any long step
    catalog, data_description = prepare_source(config, out, progress=progress, log=log)
    configs = model_configs(config, catalog, overrides)
    settings = {"reproduce": config.to_dict(), "overrides": overrides}
    write_text(out / "reproduce.yaml", yaml.safe_dump(settings, sort_keys=False))

    cache = RunCache(out, progress=progress, log=log, checkpoints=config.checkpoints)
    table = {"class_counts": dict(config.source.class_counts), "counts_seed": config.source.seed} \
        if config.source.class_counts else {}
    # The data in every run's key: a catalogue rendered again (another preset, size or
    # seed) or replaced under the same path gets new runs, never the old ones' results.
    table["catalog"] = _catalog_fingerprint(catalog)
    rows: list[dict] = []

    def run_all(specs: list[RunSpec]) -> None:
        for spec in specs:
            rows.append(cache.run(spec))
            write_runs(rows, out / "runs.csv")

    chosen: dict[str, int] = {}
    if config.crop_sweep.enabled:
        log(f"crop-size sweep (section 4.2.1): {len(config.crop_sweep.models)} model(s) x "
            f"{len(config.crop_sweep.crops)} crop sizes x {len(config.crop_sweep.seeds)} seeds")
        run_all(crop_sweep.plan_crop_sweep(config.crop_sweep, configs, table))
        stats = crop_sweep.crop_statistics(pd.DataFrame(rows), config.crop_sweep.f1)
        chosen = crop_sweep.choose_crop(stats)
        log("chosen crop (lowest CV): " + ", ".join(f"{m} {c}" for m, c in chosen.items()))

    def crop_for(model: str, crop: int | None) -> int:
        # A fixed crop wins; else the sweep's choice for this model, else its choice
        # for the first model swept (the paper found one size for both), else the
        # model configuration's crop.
        if crop is not None:
            return int(crop)
        if model in chosen:
            return chosen[model]
        return next(iter(chosen.values()), configs[model].data.crop)

    if config.downsampling.enabled:
        log("all data vs down-sampled (section 4.2.2, Table 3)")
        run_all(downsampling.plan_downsampling(config.downsampling, configs, crop_for, table))
    if config.backbones.enabled:
        log("model comparison (section 5.1)")
        run_all(backbone_comparison.plan_backbones(config.backbones, configs, crop_for, table))
    if config.class_configs.enabled:
        log("class configurations (section 5.2, Figure 7)")
        run_all(class_configs.plan_class_configs(config.class_configs, configs, crop_for, table))
    if not rows:
        raise SpiralArmsError("no experiment enabled: set crop_sweep.enabled (or another) to true")

    runs = write_runs(rows, out / "runs.csv")
    seconds = time.perf_counter() - started
    summary = {"n_trained": cache.n_trained, "n_cached": cache.n_cached, "seconds": seconds}
    vote_table = recorded_vote_table(catalog) if config.source.kind == "catalog" else None
    report_settings = ReportSettings.from_config(config, data_description, vote_table=vote_table)
    files = write_report(runs, out, report_settings, summary)
    files["runs"] = out / "runs.csv"
    log(f"report: {files['report']} ({cache.n_trained} runs trained, {cache.n_cached} cached, {seconds:.0f} s)")
    return ReproductionResult(out, files, runs, cache.n_trained, cache.n_cached, chosen, time.perf_counter() - started)

