#!/usr/bin/env bash
# The GPU checks of issues 2 and 3 as one prepared device run (about 8-10 minutes on an H200).
#
# Only for a session whose task is lent a device machine (the `status` tool says so). The device
# image has PyTorch, numpy, scipy, scikit-learn, pandas, tqdm, click, safetensors and matplotlib
# but not pydantic, so its wheels travel in `.whl`, and SMD/MSL in `.gpudata` (both ignored by
# git). From a fresh checkout, one command stages both:
#
#   bash benchmarks/gpu_stage.sh
#
# Then run it with the device tool: command `bash benchmarks/gpu_check.sh`, carry
# [".whl", ".gpudata"], timeout_s 600. Everything it prints also lands in $OUT (gpu_check.log,
# throughput*.json, bench-*.md) and comes back. Record the figures in README.md and
# benchmarks/RESULTS.md.
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

echo "== 3. gpu-profile benchmark (the forecaster at paper width) on the dev entities, if data is here"
if [ -f .gpudata/datasets.txz ]; then
  mkdir -p /tmp/datasets && tar xJf .gpudata/datasets.txz -C /tmp/datasets
  for ds in smd msl; do
    root=/tmp/datasets/$(echo $ds | tr a-z A-Z)
    timeout 180 python3 - "$ds" "$root" <<'PY'
import logging, sys, time
from pathlib import Path
from amad.bench.runner import BenchSpec, run_bench
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
ds, root = sys.argv[1], sys.argv[2]
dev = {"smd": ("machine-1-2", "machine-1-6", "machine-2-1", "machine-3-2", "machine-3-10"),
       "msl": ("C-1", "D-15", "M-6", "P-11", "T-4")}[ds]  # benchmarks/RESULTS.md's dev entities
started = time.perf_counter()
doc = run_bench(BenchSpec(dataset=ds, root=root, detectors=("amad",), profile="gpu",
                          entities=dev, out=Path(f"/tmp/bench-{ds}")))
fits = [row["amad"]["fit_s"] for row in doc["entities"].values() if "fit_s" in row.get("amad", {})]
print(f"{ds}: gpu profile, {len(fits)} entities, {time.perf_counter() - started:.0f} s, "
      f"fit {sum(fits) / max(len(fits), 1):.0f} s per entity")
PY
    cp "/tmp/bench-$ds/results.md" "$OUT/bench-$ds.md" 2>/dev/null
    cp "/tmp/bench-$ds/results.json" "$OUT/bench-$ds.json" 2>/dev/null
  done
else
  echo "no .gpudata/datasets.txz: benchmark skipped"
fi
