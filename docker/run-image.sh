#!/usr/bin/env bash
# The Action's composite step: run the diffcleanse-gate image on the runner, with --gpus all when the
# runner has an NVIDIA GPU (and device is not cpu), on the CPU otherwise. Inside the image itself (a job
# container) it runs the entrypoint directly. Inputs arrive as INPUT_* variables set by action.yml.
set -euo pipefail

# Every input of action.yml, as the entrypoint reads it (INPUT_ + upper case, hyphens kept).
INPUTS=(MODEL REVISION THRESHOLD GAIN-THRESHOLD SAMPLER DEVICE SEED MODE PUSH BRANCH HF-TOKEN FAIL-ON-BACKDOOR
        REPORT-DIR SARIF MANIFEST SWEEP-STATE IMAGE)
# Runner variables the entrypoint uses (paths are mounted at the same place inside the container).
RUNNER_VARS=(GITHUB_ACTIONS GITHUB_WORKSPACE GITHUB_OUTPUT GITHUB_STEP_SUMMARY GITHUB_SERVER_URL
             GITHUB_REPOSITORY GITHUB_RUN_ID GITHUB_SHA GITHUB_REF HF_ENDPOINT HF_HUB_OFFLINE)

token="$(printenv 'INPUT_HF-TOKEN' || true)"
if [ -n "$token" ]; then
  echo "::add-mask::$token"
fi

if [ -n "${DIFFCLEANSE_ENTRYPOINT:-}" ] && [ -f "$DIFFCLEANSE_ENTRYPOINT" ]; then
  exec python "$DIFFCLEANSE_ENTRYPOINT"
fi

action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
workspace="${GITHUB_WORKSPACE:?GITHUB_WORKSPACE is not set}"
image="$(printenv INPUT_IMAGE || true)"
if [ -z "$image" ]; then
  image="diffcleanse-gate:local"
  echo "::group::diffcleanse-gate: build $image from $action_path/Dockerfile"
  docker build --tag "$image" "$action_path"
  echo "::endgroup::"
fi
export INPUT_IMAGE="$image"

args=(run --rm --user "$(id -u):$(id -g)" --env HOME=/tmp --workdir "$workspace"
      --volume "$workspace:$workspace")
device="$(printenv INPUT_DEVICE || true)"
if [ "${device:-auto}" != "cpu" ] && command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "diffcleanse-gate: NVIDIA GPU found, running $image with --gpus all"
  args+=(--gpus all)
else
  echo "diffcleanse-gate: no NVIDIA GPU (or device cpu), running $image on the CPU"
fi
mounted=("$workspace")
for file in "${GITHUB_OUTPUT:-}" "${GITHUB_STEP_SUMMARY:-}"; do
  [ -n "$file" ] || continue
  folder="$(dirname "$file")"
  case " ${mounted[*]} " in
    *" $folder "*) ;;
    *) mounted+=("$folder"); args+=(--volume "$folder:$folder") ;;
  esac
done
for name in "${INPUTS[@]}"; do
  args+=(--env "INPUT_$name")
done
for name in "${RUNNER_VARS[@]}"; do
  args+=(--env "$name")
done
exec docker "${args[@]}" "$image"
