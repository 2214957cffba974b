#!/usr/bin/env bash
# Run THERE, on the lent GPU machine, in the repository's root, after prepare.sh here and
# with .whl and .cutouts carried. The package runs from src/ with the machine's own
# torch, timm and Lightning; the log comes back as $OUT/bench_predict_gpu.txt.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH="/tmp/site:$PWD/src" PYTHONUNBUFFERED=1 SPIRALARMS_REAL_CUTOUTS="$PWD/.cutouts"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
python3 -c "import torch, timm, lightning; print('torch', torch.__version__, 'timm', timm.__version__, 'lightning', lightning.__version__)"
python3 benchmarks/bench_predict_gpu.py "$@" 2>&1 | tee "${OUT:-/tmp}/bench_predict_gpu.txt"
