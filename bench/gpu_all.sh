#!/usr/bin/env bash
# One prepared run for a lent GPU (H100/H200), sized to finish in about 8 minutes of device time:
#   trainer throughput and MFU for `small` (issue 5), packed vs sequential vs K processes (issue 11),
#   and the calibration the forecaster reads (issue 9). Figures land in $OUT (or bench/out/).
# Usage on the device machine, from the repository root:  bash bench/gpu_all.sh
set -uo pipefail
OUT=${OUT:-bench/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 BOOKMIX_HOME="$OUT/home"
PY=${PY:-python3}
if ! "$PY" -c "import bookmix" 2>/dev/null; then
  "$PY" -m pip install -q --no-deps -e . || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,power.limit --format=csv | tee "$OUT/gpu.txt"
timeout 240 "$PY" bench/gpu_train.py --seconds 10 --train-steps 40 2>&1 | tee "$OUT/gpu_train.log"
timeout 200 "$PY" bench/gpu_packed.py --steps 15 --proc-seconds 8 --save-calibration 2>&1 | tee "$OUT/gpu_packed.log"
for m in nano micro small; do
  timeout 60 "$PY" -m bookmix bench --model "$m" --seconds 8 --json 2>>"$OUT/bench.log" | tee -a "$OUT/bench.jsonl"
done
cp -f "$BOOKMIX_HOME/calibration.json" "$OUT/" 2>/dev/null || true
# Scale transfer (issue 18): storyworld recipes ranked by micro, re-trained at small over two seeds (+ the bad-lr and
# too-small proxies); Spearman / decision accuracy with intervals in $OUT/transfer.json.
timeout 300 "$PY" bench/transfer.py --seed 1 --proxy-preset micro --target-preset small --books 48 \
  --tokens-per-book 12000 --vocab 4096 --recipes 16 --tokens 1048576 --lr 1e-3 --out "$OUT/transfer" \
  --json "$OUT/transfer.json" 2>&1 | tee "$OUT/transfer.log"
