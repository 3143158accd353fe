#!/bin/bash
# Creates (or completes) the kernel-suite venv: torch 2.13.0 (the local CPU
# build; every pip call is constrained so no CUDA torch is ever pulled), the
# build requirements (CUTLASS headers, cmake, ninja) and the test tools.
#   bash tools/make_kernel_venv.sh [DIR]      (default .venv; PYTHON picks the
#                                            interpreter, default python3.11)
# Where torch 2.13.0+cpu is not on disk (the Docker builder), pip finds it
# through PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PIP_C=(-c requirements/constraints-cpu.txt)
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3.11}" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q -U pip
"$VENV/bin/python" -m pip install -q "${PIP_C[@]}" torch==2.13.0
"$VENV/bin/python" -m pip install -q "${PIP_C[@]}" -r requirements/build.txt -r requirements/test.txt
"$VENV/bin/python" -c "import torch, triton; print('kernel venv:', '$VENV', 'torch', torch.__version__, 'triton', triton.__version__)"
