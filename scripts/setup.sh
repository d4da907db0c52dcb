#!/usr/bin/env bash
# Create (or reuse) .venv with everything the tool and its tests need. Source it: `. scripts/setup.sh`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x "$root/.venv/bin/python" ]; then
  python3 -m venv "$root/.venv"
fi
# shellcheck disable=SC1091
. "$root/.venv/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q -r "$root/requirements-torch-cpu.txt"
python -m pip install -q -e "$root[test]"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE PYTHONWARNINGS=ignore
