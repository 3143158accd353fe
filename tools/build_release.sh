#!/bin/bash
# The release wheels into DIST (default dist/): the sm_90a kernel library
# (setup.py; incremental, so a no-op when it is current), then from that same
# build
#   - the plugin wheel vllm_custom_fp8-*.whl (setup.py: the overlay and the
#     library, for a stock vLLM; docker/Dockerfile.plugin), and, unless
#     --plugin is given,
#   - the fork's wheel vllm-*+customfp8.N (tools/build_wheel.py; docker/Dockerfile).
# CI (.ci/run) and the Docker builders run this same script.
#   bash tools/build_release.sh [--plugin] [DIST]   (KERNEL_VENV, MAX_JOBS, CUSTOM_FP8_BUILD_NUMBER)
set -euo pipefail
cd "$(dirname "$0")/.."
PLUGIN_ONLY=0
if [[ "${1:-}" == --plugin ]]; then
    PLUGIN_ONLY=1
    shift
fi
DIST=${1:-dist}
VENV=${KERNEL_VENV:-.venv}
[ -x "$VENV/bin/python" ] || bash tools/make_kernel_venv.sh "$VENV"
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
"$VENV/bin/python" setup.py -q build_ext --inplace
"$VENV/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$DIST" .
[ "$PLUGIN_ONLY" == 1 ] || \
    "$VENV/bin/python" tools/build_wheel.py --out "$DIST" --build-number "${CUSTOM_FP8_BUILD_NUMBER:-1}"
