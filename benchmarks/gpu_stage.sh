#!/usr/bin/env bash
# Stages what benchmarks/gpu_check.sh carries to a device machine, from a fresh checkout, in one
# command (run here, not on the device; needs PyPI access and ../shared/datasets):
#
#   bash benchmarks/gpu_stage.sh
#
# Writes .whl/ (pydantic and its three companions as cp312 manylinux wheels: the device image has
# PyTorch and the scientific stack but not pydantic) and .gpudata/datasets.txz (SMD and MSL
# without interpretation labels, 42 MB as xz with the wheels 45 MB: a device call carries at most
# 64 MiB), and
# lists both in .git/info/exclude so they never reach a commit. Idempotent: an existing wheel or
# archive is kept. Then use the device tool with command `bash benchmarks/gpu_check.sh`,
# carry [".whl", ".gpudata"], timeout_s 600.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
for path in /.whl/ /.gpudata/; do
  grep -qxF "$path" .git/info/exclude 2>/dev/null || echo "$path" >> .git/info/exclude
done
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] && PY=.venv/bin/python
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
DATASETS=${AMAD_DATASETS:-../shared/datasets}
mkdir -p .gpudata
if [ ! -s .gpudata/datasets.txz ]; then
  tar cf - -C "$DATASETS" --exclude=interpretation_label SMD MSL | xz -6 -T0 > .gpudata/datasets.txz.part
  mv .gpudata/datasets.txz.part .gpudata/datasets.txz
fi
ls -l .whl .gpudata
