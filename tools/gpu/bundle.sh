#!/bin/bash
# The fork's part of the offline GPU bundle: .carry/fork/vllm_fork.tar.xz, the
# files the fork changes in upstream vLLM 0.25.1's Python tree (the series
# applied to the released wheel's files, the overlay, the applied record).
# and .carry/fork/_C.abi3.so, a snapshot of the kernel library built here
# (python setup.py build_ext --inplace). tools/gpu/e2e.sh unpacks both over a
# copy of upstream's tree (.carry/e2e, from tools/gpu-e2e/bundle.sh, which
# this runs first when it is missing). Also .carry/plugin/: the plugin wheel
# (tools/build_release.sh --plugin, the same library), which e2e.sh unpacks
# over another copy of upstream's tree (E2E_FORK_SITE=plugin).
#   bash tools/gpu/bundle.sh
# Then: run(command="bash tools/gpu/e2e.sh ...", carry=[".whl", ".carry"],
#           kind="nvidia-h100-x1")
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f .carry/e2e/vllm_py.tar.xz ] || bash tools/gpu-e2e/bundle.sh
WORK=$(mktemp -d) LIST=$(mktemp)
trap 'rm -rf "$WORK" "$LIST"' EXIT
tar -xJf .carry/e2e/vllm_py.tar.xz -C "$WORK"
touch "$WORK/.before"
sleep 1  # patched and copied files get a later mtime than .before
python3 tools/fork.py apply --into "$WORK"
mkdir -p .carry/fork
(cd "$WORK" && find . -type f -newer .before ! -name "*.pyc" | sort > "$LIST"
 echo "files the fork changes or adds: $(wc -l < "$LIST")"
 tar -cf - -T "$LIST" | xz -9 > "$OLDPWD/.carry/fork/vllm_fork.tar.xz")
rm -rf .carry/plugin   # builds the library first where it is not current
bash tools/build_release.sh --plugin .carry/plugin > /dev/null
cp vllm/custom_fp8/_C.abi3.so .carry/fork/_C.abi3.so
git describe --always --dirty > .carry/fork/BUNDLE_COMMIT   # e2e.sh compares it with CUSTOM_FP8_COMMIT
stat -c '%s %n' .carry/fork/* .carry/plugin/*
