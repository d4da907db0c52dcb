#!/usr/bin/env bash
# Install, then scan the built-in example: a BadDiffusion-backdoored model and a clean one.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh"
cd "$root"
status=0
for model in baddiffusion-box-corner clean-a; do
  echo "== diffcleanse scan tests/fixtures/zoo/$model"
  set +e
  diffcleanse scan "tests/fixtures/zoo/$model" --json "example-output/$model.json" --report-dir "example-output/$model"
  code=$?
  set -e
  echo "exit code $code (0 clean, 1 backdoor found, 2 bad input)"
  expected=$([ "$model" = clean-a ] && echo 0 || echo 1)
  [ "$code" = "$expected" ] || status=1
done
echo "Reports and images are in example-output/."
exit $status
