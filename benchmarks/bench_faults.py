"""The reliability report: the fault-injection suite run, and its figures per command.

One command::

    python benchmarks/bench_faults.py           # about 5 minutes on 2 cores
    python benchmarks/bench_faults.py --quick   # without the kill -9 cases
    python benchmarks/bench_faults.py --quick --cases select   # one command's cases (pytest -k)

It runs ``tests/faults`` with pytest (the same cases CI runs) and prints, per
command: the cases tried, how many were handled as expected (the case's assertions
held: exit status, the first line a person sees, rows kept, files whole), the rows
lost (goal 0), the partial files left under a final name (goal 0) and the kills
survived. Cases skipped (a full disk needs a mountable tmpfs) are counted apart.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_suite(quick: bool, junit: Path, cases: str | None = None) -> int:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(ROOT / "tests" / "faults"),
               f"--junitxml={junit}", "-o", "junit_family=xunit1"]
    if quick:
        command += ["-m", "not slow"]
    if cases:
        command += ["-k", cases]
    return subprocess.run(command, cwd=ROOT).returncode


def read_cases(junit: Path) -> list[dict]:
    cases = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        cases.append({
            "command": props.get("command", case.get("name", "?").split("[")[0]),
            "fault": props.get("fault", ""),
            "ok": not failed and not skipped,
            "skipped": skipped,
            "rows_lost": int(props.get("rows_lost", 0)),
            "partial": int(props.get("partial_files", 0)),
            "kill": int(props.get("kill", 0)),
        })
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fault-injection suite and print the reliability report.")
    parser.add_argument("--quick", action="store_true", help="leave out the kill -9 cases")
    parser.add_argument("--cases", help="only the cases whose names match this pytest -k expression")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "faults.xml"
        status = run_suite(args.quick, junit, args.cases)
        cases = read_cases(junit)
    rows = defaultdict(lambda: {"tried": 0, "ok": 0, "skipped": 0, "rows_lost": 0, "partial": 0, "kills": 0, "killed": 0})
    faults = defaultdict(set)
    for c in cases:
        r = rows[c["command"]]
        r["tried"] += 1
        r["ok"] += c["ok"]
        r["skipped"] += c["skipped"]
        r["rows_lost"] += c["rows_lost"]
        r["partial"] += c["partial"]
        r["kills"] += c["kill"]
        r["killed"] += c["kill"] and c["ok"]
        faults[c["command"]].add(c["fault"])
    print("\n| command | cases | handled as expected | skipped | rows lost | partial files | kills survived |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    total = defaultdict(int)
    for command in sorted(rows):
        r = rows[command]
        for key, value in r.items():
            total[key] += value
        print(f"| {command} | {r['tried']} | {r['ok']} | {r['skipped']} | {r['rows_lost']} | {r['partial']} | "
              f"{r['killed']} of {r['kills']} |")
    print(f"| **all** | {total['tried']} | {total['ok']} | {total['skipped']} | {total['rows_lost']} | "
          f"{total['partial']} | {total['killed']} of {total['kills']} |")
    print("\nfault classes per command:")
    for command in sorted(faults):
        print(f"  {command}: {', '.join(sorted(f for f in faults[command] if f))}")
    sys.exit(status)


if __name__ == "__main__":
    main()
