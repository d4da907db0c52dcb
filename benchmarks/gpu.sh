#!/usr/bin/env bash
# The issue-6 benchmark in one call on a lent GPU machine (run from the repo root; $OUT comes back).
#
# Here first:  bash benchmarks/fetch_wheels.sh        (wheels the GPU image lacks, into .whl/)
# Then:        device run, carry [".whl"], command "bash benchmarks/gpu.sh", timeout_s 600
#
# Stages (each under its own `timeout`, each leaving its results before the next starts):
#   1. scale  - scan + one forced removal round of a random ddpm-cifar10-architecture model (35.7M), on a quiet GPU
#   2. zoo    - train the CIFAR-shaped zoo, architectures a and b in two processes side by side
#   3. detect - our scan, Elijah and TERD on every zoo model, $SHARDS processes side by side, then merged
#      removal - `diffcleanse clean --true-trigger` on one model per family and one clean model, beside stage 3
# Everything lands in $OUT/results.tar.gz (re-packed after every stage) plus $OUT/gpu.log, $OUT/summary.md and
# $OUT/roc.png. Knobs (environment): ZOO_SCRATCH_STEPS, ZOO_FINETUNE_STEPS, ZOO_BATCH, TERD_ITERATIONS,
# SHARDS, and T_SCALE, T_ZOO, T_DETECT (stage time limits in seconds).
set -uo pipefail
OUT=${OUT:-runs/gpu-out}
RUNS=${RUNS:-/tmp/dcg-runs}
ZOO_SCRATCH_STEPS=${ZOO_SCRATCH_STEPS:-2500}
ZOO_FINETUNE_STEPS=${ZOO_FINETUNE_STEPS:-1500}
ZOO_BATCH=${ZOO_BATCH:-64}
TERD_ITERATIONS=${TERD_ITERATIONS:-1000}
SHARDS=${SHARDS:-8}
T_SCALE=${T_SCALE:-150}
T_ZOO=${T_ZOO:-200}
T_DETECT=${T_DETECT:-150}
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/gpu.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
started=$(date +%s)

stamp() { echo "=== $(( $(date +%s) - started )) s: $*"; }
pack() { tar -czf "$OUT/results.tar.gz" -C "$RUNS" --exclude='*.safetensors' --exclude='*/unet/*' . 2>/dev/null || true; }

stamp setup
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="/tmp/site:$PWD:$PWD/benchmarks"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import sys, torch, diffusers, torch_pruning, sklearn; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'torch-pruning', torch_pruning.__version__)" || exit 1
git log -1 --format='commit %H %s' 2>/dev/null || true

stamp "stage 1: scale scan"
timeout "$T_SCALE" python3 benchmarks/scale_scan.py --out "$RUNS/scale" --device cuda
pack

stamp "stage 2: CIFAR-shaped zoo"
for arch in a b; do
  timeout "$T_ZOO" python3 benchmarks/cifar_zoo.py --out "$RUNS/zoo" --arch "$arch" --scratch-steps "$ZOO_SCRATCH_STEPS" \
    --finetune-steps "$ZOO_FINETUNE_STEPS" --batch "$ZOO_BATCH" > "$RUNS/zoo-$arch.log" 2>&1 &
done
wait
cat "$RUNS"/zoo-*.log
pack

stamp "stage 3: detectors side by side, and removal beside them"
for ((k = 0; k < SHARDS; k++)); do
  timeout "$T_DETECT" python3 benchmarks/compare_detectors.py --zoo "$RUNS/zoo" --device cuda \
    --terd-iterations "$TERD_ITERATIONS" --shard "$k/$SHARDS" --out "$RUNS/detect/shard-$k" \
    > "$RUNS/detect-$k.log" 2>&1 &
done
mkdir -p "$RUNS/removal"
for model in baddiffusion-box-corner trojdiff-checker-cross villandiffusion-box-hat clean-a0; do
  [ -d "$RUNS/zoo/$model" ] || continue
  trigger=()
  [ -f "$RUNS/zoo/$model/backdoor.safetensors" ] && trigger=(--true-trigger "$RUNS/zoo/$model/backdoor.safetensors")
  timeout "$T_DETECT" python3 -m diffcleanse_gate clean "$RUNS/zoo/$model" --out "$RUNS/removal/$model-cleaned" \
    --device cuda --quiet --json "$RUNS/removal/$model.json" "${trigger[@]}" > "$RUNS/removal/$model.log" 2>&1 &
done
wait
tail -n 3 "$RUNS"/detect-*.log
python3 benchmarks/compare_detectors.py --zoo "$RUNS/zoo" --merge "$RUNS"/detect/shard-* --out "$RUNS/detect"
python3 benchmarks/removal_table.py "$RUNS"/removal/*.json > "$RUNS/removal/table.md"
pack

stamp "summary"
{
  echo "# GPU benchmark, $(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader)"
  echo "Settings: zoo steps $ZOO_SCRATCH_STEPS/$ZOO_FINETUNE_STEPS batch $ZOO_BATCH, TERD iterations $TERD_ITERATIONS, $SHARDS shards"
  echo; echo "## Scale (ddpm-cifar10 architecture)"; echo '```'; cat "$RUNS/scale/scale.json"; echo '```'
  echo; echo "## Zoo"; echo '```'; cat "$RUNS"/zoo/manifest-*.json; echo '```'
  echo; echo "## Detectors"; cat "$RUNS/detect/tables.md"
  echo; echo "## Removal"; cat "$RUNS/removal/table.md"
} > "$OUT/summary.md" 2>&1
cp "$RUNS/detect/roc.png" "$OUT/roc.png" 2>/dev/null
pack
stamp finished
