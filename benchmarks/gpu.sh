#!/usr/bin/env bash
# The issue-6 benchmark in one call on a lent GPU machine (run from the repo root; $OUT comes back).
#
# Here first:  bash benchmarks/fetch_wheels.sh        (wheels the GPU image lacks, into .whl/)
# Then:        device run, kind nvidia-h200, carry [".whl"], command "bash benchmarks/gpu.sh", timeout_s 600
#
# Stages (each under its own `timeout`, each leaving its results before the next starts):
#   0. smoke  - scan, clean, both baselines and the zoo trainer on CUDA with tiny settings, side by side,
#               under an MPS daemon where one starts (again without it if they fail under it); if they fail
#               the run stops here (exit 3) with the logs, so a rerun still fits the lease
#   1. scale  - scan + one forced removal round of a random ddpm-cifar10-architecture model (35.7M), on a quiet GPU
#   2. zoo    - train the CIFAR-shaped zoo, architectures a and b in two processes side by side; each training
#               phase runs the steps asked for or, where its first steps say these would not fit, fewer
#   3. detect - our scan, Elijah and TERD on every zoo model, $SHARDS processes side by side, then merged
#      removal - `diffcleanse clean --true-trigger` on one model per family, beside stage 3
# Everything lands in $OUT/results.tar.gz (re-packed after every stage) plus $OUT/gpu.log, $OUT/summary.md and
# $OUT/roc.png. Knobs (environment): ZOO_SCRATCH_STEPS, ZOO_FINETUNE_STEPS, ZOO_SCRATCH_S, ZOO_FINETUNE_S,
# ZOO_BATCH, TERD_ITERATIONS, SHARDS, DEVICE (cpu for a dry run here), SMOKE (0 skips stage 0), MPS (0: no
# CUDA MPS daemon), STAGES (of scale zoo detect), and T_SMOKE, T_SCALE, T_ZOO, T_DETECT (stage time limits in seconds).
set -uo pipefail
shopt -s nullglob
OUT=${OUT:-runs/gpu-out}
RUNS=${RUNS:-/tmp/dcg-runs}
# The bases get most of the zoo stage: on the CPU a colour base sampled sanely only after 9,000 steps (36 % of
# its pixels in range after 3,000), and an attack on such a base implanted in 1,500 fine-tune steps (97 %),
# where on the 3,000-step base it stayed at 0-6 % (benchmarks/RESULTS.md, "The colour attacks that do not
# implant"). The manifest's `in_range` shows whether the bases got there.
ZOO_SCRATCH_STEPS=${ZOO_SCRATCH_STEPS:-9000}
ZOO_FINETUNE_STEPS=${ZOO_FINETUNE_STEPS:-1500}
ZOO_SCRATCH_S=${ZOO_SCRATCH_S:-120}
ZOO_FINETUNE_S=${ZOO_FINETUNE_S:-115}
ZOO_BATCH=${ZOO_BATCH:-64}
TERD_ITERATIONS=${TERD_ITERATIONS:-500}
SHARDS=${SHARDS:-12}
DEVICE=${DEVICE:-cuda}
SMOKE=${SMOKE:-1}
MPS=${MPS:-1}
STAGES=${STAGES:-scale zoo detect}
T_SMOKE=${T_SMOKE:-60}
T_SCALE=${T_SCALE:-100}
T_ZOO=${T_ZOO:-285}
T_DETECT=${T_DETECT:-225}
FIXTURE=tests/fixtures/zoo/baddiffusion-box-corner
mkdir -p "$OUT" "$RUNS"
exec > >(tee -a "$OUT/gpu.log") 2>&1
export PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
started=$(date +%s)

wants() { [[ " $STAGES " == *" $1 "* ]]; }  # is stage $1 among STAGES?
stamp() { echo "=== $(( $(date +%s) - started )) s: $*"; }
# A bare `wait` would also wait for the `tee` behind the log (a process substitution) and never return.
wait_jobs() { local pids; pids=$(jobs -p); [ -z "$pids" ] || wait $pids; }
# Side-by-side processes on one GPU take turns unless an MPS daemon lets their kernels run together: the
# first GPU run (without it) ran nine side by side and each scan of a 6.5M-parameter model took 104-125 s,
# where the 35.7M-parameter model's scan alone took 20 s.
start_mps() {
  command -v nvidia-cuda-mps-control > /dev/null || { echo "no nvidia-cuda-mps-control: processes take turns"; return 1; }
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps-pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps-log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  nvidia-cuda-mps-control -d && echo "MPS daemon started"
}
stop_mps() {
  echo quit | nvidia-cuda-mps-control 2> /dev/null
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  echo "MPS daemon stopped"
}
pack() { tar -czf "$OUT/results.tar.gz" -C "$RUNS" --exclude='*.safetensors' --exclude='*/unet/*' . 2>/dev/null || true; }

stamp setup
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
# The image's transformers refuses huggingface_hub 2.x, and diffusers imports it through peft when peft is
# installed; this benchmark uses neither, so they leave this throwaway machine.
python3 -m pip uninstall -q -y peft transformers sentence-transformers 2>/dev/null || true
export PYTHONPATH="/tmp/site:$PWD:$PWD/benchmarks"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import sys, torch, diffusers, torch_pruning, sklearn; print(sys.version.split()[0], 'torch', torch.__version__,
'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'torch-pruning', torch_pruning.__version__)" || exit 1

smoke_checks() {
  local smoke="$RUNS/smoke" report failed=0
  rm -rf "$smoke" && mkdir -p "$smoke"
  timeout "$T_SMOKE" python3 -m diffcleanse_gate scan "$FIXTURE" --device "$DEVICE" --quiet --json "$smoke/scan.json" \
    > "$smoke/scan.log" 2>&1 &
  timeout "$T_SMOKE" python3 -m diffcleanse_gate clean "$FIXTURE" --out "$smoke/cleaned" --device "$DEVICE" --quiet \
    --rounds 1 --repair-steps 20 --effect-steps 10 --true-trigger "$FIXTURE/backdoor.safetensors" \
    --json "$smoke/clean.json" > "$smoke/clean.log" 2>&1 &
  timeout "$T_SMOKE" python3 benchmarks/compare_detectors.py --device "$DEVICE" --shard 0/10 --elijah-steps 3 \
    --terd-iterations 3 --out "$smoke/detect" > "$smoke/detect.log" 2>&1 &
  timeout "$T_SMOKE" python3 benchmarks/cifar_zoo.py --smoke --device "$DEVICE" --out "$smoke/zoo" > "$smoke/zoo.log" 2>&1 &
  wait_jobs
  for report in scan.json clean.json detect/tables.md zoo/manifest-all.json; do
    [ -s "$smoke/$report" ] || { echo "smoke check failed: no $report"; failed=1; }
  done
  # eager training would be several times slower than the zoo stage's time budget assumes
  ! grep -q "capture failed" "$smoke/zoo.log" || { echo "smoke check failed: CUDA graph capture"; failed=1; }
  tail -n 4 "$smoke"/*.log
  [ "$failed" = 0 ] || tail -n 40 "$smoke"/*.log
  return "$failed"
}

mps=0
[ "$MPS" = 1 ] && [ "$DEVICE" = cuda ] && start_mps && mps=1
if [ "$SMOKE" = 1 ]; then
  stamp "stage 0: smoke checks on $DEVICE (MPS $mps)"
  if ! smoke_checks; then
    pack
    [ "$mps" = 1 ] || exit 3
    stop_mps
    mps=0
    stamp "stage 0 again, without MPS"
    smoke_checks || { pack; exit 3; }
  fi
  pack
fi

if wants scale; then
  stamp "stage 1: scale scan"
  timeout "$T_SCALE" python3 benchmarks/scale_scan.py --out "$RUNS/scale" --device "$DEVICE" --no-cli
  pack
fi

if wants zoo; then
  stamp "stage 2: CIFAR-shaped zoo"
  for arch in a b; do
    timeout "$T_ZOO" python3 benchmarks/cifar_zoo.py --out "$RUNS/zoo" --arch "$arch" --device "$DEVICE" --batch "$ZOO_BATCH" \
      --scratch-steps "$ZOO_SCRATCH_STEPS" --scratch-seconds "$ZOO_SCRATCH_S" \
      --finetune-steps "$ZOO_FINETUNE_STEPS" --finetune-seconds "$ZOO_FINETUNE_S" > "$RUNS/zoo-$arch.log" 2>&1 &
  done
  wait_jobs
  cat "$RUNS"/zoo-*.log
  pack
fi

if wants detect; then
  stamp "stage 3: detectors side by side, and removal beside them"
  for ((k = 0; k < SHARDS; k++)); do
    timeout "$T_DETECT" python3 benchmarks/compare_detectors.py --zoo "$RUNS/zoo" --device "$DEVICE" \
      --terd-iterations "$TERD_ITERATIONS" --shard "$k/$SHARDS" --out "$RUNS/detect/shard-$k" \
      > "$RUNS/detect-$k.log" 2>&1 &
  done
  mkdir -p "$RUNS/removal"
  for model in baddiffusion-box-corner trojdiff-checker-cross villandiffusion-box-hat; do
    [ -d "$RUNS/zoo/$model" ] || continue
    trigger=()
    [ -f "$RUNS/zoo/$model/backdoor.safetensors" ] && trigger=(--true-trigger "$RUNS/zoo/$model/backdoor.safetensors")
    timeout "$T_DETECT" python3 -m diffcleanse_gate clean "$RUNS/zoo/$model" --out "$RUNS/removal/$model-cleaned" \
      --device "$DEVICE" --quiet --json "$RUNS/removal/$model.json" "${trigger[@]}" > "$RUNS/removal/$model.log" 2>&1 &
  done
  wait_jobs
  tail -n 3 "$RUNS"/detect-*.log "$RUNS"/removal/*.log
  python3 benchmarks/compare_detectors.py --zoo "$RUNS/zoo" --merge "$RUNS"/detect/shard-* --out "$RUNS/detect"
  python3 benchmarks/removal_table.py "$RUNS"/removal/*.json > "$RUNS/removal/table.md"
  pack
fi

stamp "summary"
{
  echo "# GPU benchmark, $(date -u +%F), $(nvidia-smi --query-gpu=name --format=csv,noheader)"
  echo "Settings: zoo steps at most $ZOO_SCRATCH_STEPS/$ZOO_FINETUNE_STEPS within $ZOO_SCRATCH_S/$ZOO_FINETUNE_S s,"
  echo "batch $ZOO_BATCH, TERD iterations $TERD_ITERATIONS, $SHARDS shards, MPS $mps, stages $STAGES"
  echo; echo "## Scale (ddpm-cifar10 architecture)"; echo '```'; cat "$RUNS/scale/scale.json"; echo '```'
  echo; echo "## Zoo"; echo '```'; cat "$RUNS"/zoo/manifest-*.json; echo '```'
  echo; echo "## Detectors"; cat "$RUNS/detect/tables.md"
  echo; echo "## Removal"; cat "$RUNS/removal/table.md"
} > "$OUT/summary.md" 2>&1
cp "$RUNS/detect/roc.png" "$OUT/roc.png" 2>/dev/null
pack
[ "$mps" = 1 ] && stop_mps
stamp finished
