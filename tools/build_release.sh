#!/bin/bash
# The fork's wheel into DIST (default dist/): the sm_90a kernel library
# (setup.py; incremental, so a no-op when it is current), then
# tools/build_wheel.py. CI (.ci/run) and the Docker builder (docker/Dockerfile)
# run this same script.
#   bash tools/build_release.sh [DIST]      (KERNEL_VENV, MAX_JOBS, CUSTOM_FP8_BUILD_NUMBER)
set -euo pipefail
cd "$(dirname "$0")/.."
DIST=${1:-dist}
VENV=${KERNEL_VENV:-.venv}
[ -x "$VENV/bin/python" ] || bash tools/make_kernel_venv.sh "$VENV"
MAX_JOBS=${MAX_JOBS:-$(nproc)} "$VENV/bin/python" setup.py -q build_ext --inplace
"$VENV/bin/python" tools/build_wheel.py --out "$DIST" --build-number "${CUSTOM_FP8_BUILD_NUMBER:-1}"
