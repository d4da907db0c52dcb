# syntax=docker/dockerfile:1
# The image the diffcleanse-gate Action runs: CUDA-enabled torch, the package built as a wheel, entrypoint.py.
# Build stage: a virtual environment with every runtime dependency at the versions in docker/constraints.txt.
FROM python:3.11.13-slim-bookworm AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY diffcleanse_gate ./diffcleanse_gate
COPY docker/constraints.txt /tmp/constraints.txt
# The wheel is built from this checkout and installed with the CUDA 12.8 build of torch; pip, setuptools
# and wheel leave the environment once the install is done.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && /opt/venv/bin/pip install --extra-index-url https://download.pytorch.org/whl/cu128 \
        --constraint /tmp/constraints.txt "torch==2.11.0+cu128" /tmp/wheels/diffcleanse_gate-*.whl \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel

# Final stage: the environment, the entrypoint and a non-root user; no compiler, no pip.
FROM python:3.11.13-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HOME=/tmp/huggingface \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    DIFFCLEANSE_ENTRYPOINT=/app/entrypoint.py
RUN python -m pip uninstall --yes pip setuptools wheel \
    && groupadd --system --gid 1000 diffcleanse \
    && useradd --system --uid 1000 --gid diffcleanse --create-home --home-dir /home/diffcleanse diffcleanse
COPY --from=builder /opt/venv /opt/venv
COPY entrypoint.py /app/entrypoint.py
USER 1000:1000
WORKDIR /home/diffcleanse
ENTRYPOINT ["/opt/venv/bin/python", "/app/entrypoint.py"]
