#!/usr/bin/env bash
# The GPU checks of issues 2 and 3 as one prepared device run (about 8-10 minutes on an H200).
#
# Only for a session whose task is lent a device machine (the `status` tool says so). The device
# image has PyTorch, numpy, scipy, scikit-learn, pandas, tqdm, click, safetensors and matplotlib
# but not pydantic, so its wheels travel in `.whl` (ignored by git). Once, on this machine:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
#     pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
#
# and, for the benchmark timing, the SMD and MSL data (188 MB raw, about 20 MB as xz; the device
# call carries at most 64 MiB):
#
#   echo /.gpudata/ >> .git/info/exclude; mkdir -p .gpudata
#   tar cf - -C ../shared/datasets --exclude=interpretation_label SMD MSL | xz -6 > .gpudata/datasets.txz
#
# Then run it with the device tool: command `bash benchmarks/gpu_check.sh`, carry
# [".whl", ".gpudata"], timeout_s 600. Everything it prints also lands in $OUT (gpu_check.log, throughput*.json,
# bench-*.md) and comes back. Record the figures in README.md and benchmarks/RESULTS.md.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(0))"

echo "== 1. GPU tests (tests/gpu; --noconftest: the S3/Prefect fixtures are not needed there)"
timeout 150 python3 -m pytest -q --noconftest -o addopts="" -p no:cacheprovider tests/gpu

echo "== 2. throughput, issue 2's configuration (C=55, batch 256, L=100, d=512, 8 heads, 3 layers)"
timeout 120 python3 benchmarks/train_throughput.py --device cuda --channels 55 --batch 256 \
  --json "$OUT/throughput.json"
timeout 150 python3 benchmarks/train_throughput.py --device cuda --channels 55 --batch 256 \
  --compile --no-reference --json "$OUT/throughput_compile.json"

echo "== 3. gpu-profile benchmark time (issue 3: both datasets under 15 minutes), if data is here"
if [ -f .gpudata/datasets.txz ]; then
  mkdir -p /tmp/datasets && tar xJf .gpudata/datasets.txz -C /tmp/datasets
  for ds in smd msl; do
    root=/tmp/datasets/$(echo $ds | tr a-z A-Z)
    timeout 200 python3 - "$ds" "$root" <<'PY'
import logging, sys, time
from pathlib import Path
from amad.bench.runner import BenchSpec, run_bench
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
ds, root = sys.argv[1], sys.argv[2]
started = time.perf_counter()
doc = run_bench(BenchSpec(dataset=ds, root=root, detectors=("amad",), profile="gpu",
                          out=Path(f"/tmp/bench-{ds}")))
print(f"{ds}: gpu profile, {len(doc['entities'])} entities, {time.perf_counter() - started:.0f} s")
PY
    cp "/tmp/bench-$ds/results.md" "$OUT/bench-$ds.md" 2>/dev/null
    cp "/tmp/bench-$ds/results.json" "$OUT/bench-$ds.json" 2>/dev/null
  done
else
  echo "no .gpudata/datasets.txz: benchmark skipped"
fi
