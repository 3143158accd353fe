#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds the fork's vLLM wheel, vllm-0.25.1+customfp8.N, from the pinned release.

    python3 tools/build_wheel.py [--build-number N] [--out dist]

The released vllm 0.25.1 wheel (patches/upstream.json "wheel": URL and
sha256; cached in .cache/upstream) supplies every compiled library. Its
vllm/ tree gets the patch series and the overlay (tools/fork.py apply
--into), plus the fork's CUDA library vllm/custom_fp8/_C.abi3.so (build it
first: python setup.py build_ext --inplace). The version becomes the PEP 440
local version 0.25.1+customfp8.N in vllm/_version.py, the .dist-info name and
METADATA; Requires-Dist stays upstream's (the kernel library needs nothing
the release does not already pull in). RECORD is rewritten; the record of
what was applied goes to the .dist-info as custom_fp8_applied.json.
The Docker builder runs this same script (docker/Dockerfile).
"""

import argparse
import base64
import csv
import hashlib
import io
import json
import re
import shutil
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import fork  # noqa: E402  (tools/fork.py)

LIBRARY = Path("vllm/custom_fp8/_C.abi3.so")


def fork_version(upstream: str, build: int) -> str:
    return f"{upstream}+customfp8.{build}"


def cached_upstream_wheel(f: fork.Fork) -> Path:
    info = json.loads((f.patches_dir / "upstream.json").read_text())["wheel"]
    path = f.cache_dir / info["file"]
    if not path.is_file() or fork.sha256_of(path) != info["sha256"]:
        f.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        fork.download(info["url"], partial)
        got = fork.sha256_of(partial)
        if got != info["sha256"]:
            partial.unlink()
            raise fork.ForkError(f"sha256 mismatch for {info['url']}: expected {info['sha256']}, "
                                 f"got {got}")
        partial.rename(path)
    return path


def set_version(staging: Path, upstream: str, version: str) -> Path:
    """Rewrites the version in _version.py, METADATA and the .dist-info name."""
    version_py = staging / "vllm" / "_version.py"
    text = version_py.read_text()
    local = version.split("+", 1)[1]
    text = re.sub(r"__version__ = version = '[^']*'", f"__version__ = version = '{version}'", text)
    text = re.sub(r"__version_tuple__ = version_tuple = \(([^)]*)\)",
                  lambda m: f"__version_tuple__ = version_tuple = ({m.group(1)}, '{local}')", text)
    version_py.write_text(text)
    old_info = staging / f"vllm-{upstream}.dist-info"
    new_info = staging / f"vllm-{version}.dist-info"
    old_info.rename(new_info)
    metadata = new_info / "METADATA"
    metadata.write_text(re.sub(r"^Version: .*$", f"Version: {version}", metadata.read_text(),
                               count=1, flags=re.M))
    return new_info


def record_line(root: Path, path: Path) -> list[str]:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return [path.relative_to(root).as_posix(), f"sha256={digest}", str(len(data))]


def write_wheel(staging: Path, info_dir: Path, out: Path) -> None:
    files = sorted(p for p in staging.rglob("*") if p.is_file() and p != info_dir / "RECORD")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path in files:
        writer.writerow(record_line(staging, path))
    writer.writerow([(info_dir / "RECORD").relative_to(staging).as_posix(), "", ""])
    (info_dir / "RECORD").write_text(record.getvalue())
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as whl:
        # .dist-info last, as wheel builders do, so readers find it at the end
        for path in sorted(files, key=lambda p: p.parent == info_dir) + [info_dir / "RECORD"]:
            whl.write(path, path.relative_to(staging).as_posix())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--build-number", type=int, default=1, help="N of +customfp8.N (default 1)")
    p.add_argument("--out", type=Path, default=REPO / "dist")
    args = p.parse_args()
    f = fork.Fork(REPO)
    library = REPO / LIBRARY
    if not library.is_file():
        raise SystemExit(f"{LIBRARY} is not built: python setup.py build_ext --inplace")
    version = fork_version(f.pinned, args.build_number)
    upstream_wheel = cached_upstream_wheel(f)
    staging = f.build_dir / "wheel"
    shutil.rmtree(staging, ignore_errors=True)
    print(f"unpacking {upstream_wheel.name}", file=sys.stderr)
    with zipfile.ZipFile(upstream_wheel) as whl:
        whl.extractall(staging)
    fork.apply_into(f, f.pinned, staging)
    shutil.copy2(library, staging / LIBRARY)
    info_dir = set_version(staging, f.pinned, version)
    (staging / ".custom_fp8_applied.json").rename(info_dir / "custom_fp8_applied.json")
    wheel_tag = upstream_wheel.name.split("-", 2)[2]  # cp38-abi3-manylinux_2_28_x86_64.whl
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"vllm-{version}-{wheel_tag}"
    print(f"writing {out}", file=sys.stderr)
    write_wheel(staging, info_dir, out)
    print(out)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except fork.ForkError as e:
        sys.exit(f"build_wheel: {e}")
