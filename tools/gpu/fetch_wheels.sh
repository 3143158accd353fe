#!/bin/bash
# Downloads the Python wheels the GPU machine lacks for the kernel tests into
# .carry/test-wheels (git-ignored), for tools/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.carry/' .git/info/exclude || echo /.carry/ >> .git/info/exclude
mkdir -p .carry/test-wheels
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform any \
    -d .carry/test-wheels pytest==9.0.2 pluggy==1.7.0 iniconfig==2.3.1 packaging==26.4
ls .carry/test-wheels
