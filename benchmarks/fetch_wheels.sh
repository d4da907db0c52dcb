#!/usr/bin/env bash
# Download the wheels benchmarks/gpu.sh needs on a lent GPU machine (which reaches no package registry) into
# .whl/ at the repo root, for CPython 3.12 on x86-64 Linux. Run here, where PyPI is reachable, then name .whl
# in the device run's `carry`. Versions match this project's development venv; the GPU image already has
# torch, numpy, pillow, scikit-learn, filelock, fsspec, pyyaml, tqdm, requests, regex and rich.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  platforms+=(--platform "$tag")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" -d .whl \
  diffusers==0.42.1 huggingface_hub==2.4.0 httpx2==2.16.2 httpcore2==2.16.2 h11==0.16.0 truststore==0.10.5 \
  anyio==4.16.0 idna==3.20 click==8.5.1 hf-xet==1.8.0 safetensors==0.8.0 importlib_metadata==10.2.0 \
  lazy-importer==0.1.0 zipp typing_extensions torch-pruning==1.6.1
ls -l .whl
