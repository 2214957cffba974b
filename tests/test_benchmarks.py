"""Smoke run of every benchmark: ``python benchmarks/<name>.py --quick`` exits 0 and prints its result.

Each benchmark's ``--quick`` is a tiny run (small data, timm's random ``test_efficientnet``
where a backbone is trained); the numbers it prints mean nothing, but the run proves that
the benchmark still works against the package, and that it prints its table or ratios.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Benchmarks whose --quick run a test elsewhere makes, with stronger checks of what it prints.
SMOKE_RUN_ELSEWHERE = {"bench_realism": "tests/test_synthetic.py::test_bench_realism_quick_run"}
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("bench_*.py") if p.stem not in SMOKE_RUN_ELSEWHERE)
CUTOUTS = ROOT.parent / "shared" / "data" / "sdss-gz-cutouts" / "index.csv"

#: Extra arguments of each benchmark's smoke run (an output folder is added where it takes one).
ARGUMENTS = {
    # tests/faults itself runs in the suite; one command's cases exercise the report.
    "bench_faults": ["--cases", "missing_inputs"],
}

#: A line that each benchmark prints only once it has measured everything (a regular expression).
KEY_LINE = {
    "bench_cache_accuracy": r"^\s+cached 2 \|\s+1 \| \d\.\d{3} ± nan",
    "bench_embedding_cache": r"^speed-up\s+[\d.]+ x per epoch",
    "bench_faults": r"^\| \*\*all\*\* \| \d+ \| \d+ \|",
    "bench_predict": r"^\s+missing, 1 worker\s+growth 100 -> 1,000 rows: [+-][\d.]+ %",
    "bench_predict_gpu": r"^\s+bare forward \(batch 16\)\s+[\d.]+$",
    "bench_recipes": r"^beats the paper's recipe on m=4 F1 and macro F1: ",
    "bench_store": r"^\s+dataset item \(float tensor\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x$",
    "bench_synth": r"^sdss / crisp, render \+ JPEG: [\d.]+$",
    "bench_realism": r"^\s+AUC of 1 - p\(\?\), flagged spirals vs non-spirals: [\d.]+$",
}

#: Benchmarks that read the shared real cutouts.
REAL_DATA = {"bench_predict", "bench_predict_gpu", "bench_store", "bench_realism"}


@pytest.mark.slow
@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_quick_run_prints_its_result(name, tmp_path):
    script = ROOT / "benchmarks" / f"{name}.py"
    source = script.read_text(encoding="utf-8")
    if '"--quick"' not in source:
        pytest.fail(f"{name} has no --quick smoke mode")
    assert name in KEY_LINE, f"{name}: add the line its --quick run must print to KEY_LINE"
    if name in REAL_DATA and not CUTOUTS.is_file():
        pytest.skip(f"{name} reads the real cutouts, absent at {CUTOUTS.parent}")
    command = [sys.executable, str(script), "--quick", *ARGUMENTS.get(name, [])]
    if '"--out"' in source:
        command += ["--out", str(tmp_path / "out")]
    run = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, f"{name} --quick exited {run.returncode}:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"
    assert re.search(KEY_LINE[name], run.stdout, flags=re.MULTILINE), f"{name} printed no result:\n{run.stdout[-3000:]}"


@pytest.mark.parametrize("name", sorted(SMOKE_RUN_ELSEWHERE))
def test_a_benchmark_left_out_here_is_smoke_run_by_the_test_named(name):
    file, function = SMOKE_RUN_ELSEWHERE[name].split("::")
    source = (ROOT / file).read_text(encoding="utf-8")
    assert f"def {function}(" in source and f"{name}.py" in source and '"--quick"' in source
