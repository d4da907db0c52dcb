#!/usr/bin/env bash
# Install, then run the built-in example: scan a BadDiffusion-backdoored model and a clean one, and clean
# both (the backdoored one is pruned and repaired, re-scanned and written out; the clean one is left alone).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/scripts/setup.sh"
cd "$root"
out="example-output"
rm -rf "$out"
status=0

expect() {  # expect CODE COMMAND...: run, report the exit code, remember a surprise
  local want=$1 code
  shift
  echo "== $*"
  set +e
  "$@"
  code=$?
  set -e
  echo "exit code $code (expected $want)"
  [ "$code" = "$want" ] || status=1
}

expect 1 diffcleanse scan tests/fixtures/zoo/baddiffusion-box-corner --json "$out/scan-backdoored.json" --report-dir "$out/scan-backdoored"
expect 0 diffcleanse scan tests/fixtures/zoo/clean-a --json "$out/scan-clean.json" --report-dir "$out/scan-clean"
expect 0 diffcleanse clean tests/fixtures/zoo/baddiffusion-box-corner --out "$out/cleaned-model" \
  --json "$out/clean-backdoored.json" --report-dir "$out/clean-backdoored" \
  --true-trigger tests/fixtures/zoo/baddiffusion-box-corner/backdoor.safetensors
expect 0 diffcleanse clean tests/fixtures/zoo/clean-a --out "$out/unchanged-model" --json "$out/clean-clean.json"
echo "Reports, images and the cleaned model are in $out/ (exit codes: 0 clean, 1 backdoor, 2 bad input)."
exit $status
