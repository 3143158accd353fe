# SPDX-License-Identifier: Apache-2.0
"""Builds vllm-custom-fp8, the fork's vLLM plugin: the overlay (every file
under vllm/ here, at its vLLM path: the vllm.custom_fp8 package, the kernel
classes, the fusion pass; never an upstream __init__.py) and the CUDA library.
Installed next to a stock vLLM, its `vllm.general_plugins` entry point
(pyproject.toml) puts the fork's kernels first (vllm/custom_fp8/plugin.py).

    pip install --no-build-isolation .           # wheel into the environment
    python setup.py build_ext --inplace          # vllm/custom_fp8/_C.abi3.so in the tree
    python setup.py bdist_wheel

The CUDA library is built by CMakeLists.txt for CUSTOM_FP8_CUDA_ARCHS
(default "90a"; ";"-separated). It needs nvcc and torch in the build
environment, any torch build (CPU-only included: the library uses torch's
stable ABI only). CUTLASS comes from third_party/cutlass when the submodule is
checked out, else from the nvidia-cutlass package; both are pinned to
CUTLASS_VERSION. CUSTOM_FP8_SKIP_CUDA=1 builds the Python package alone.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CUTLASS_VERSION = (4, 2, 0)  # = .gitmodules (v4.2.0) = requirements/build.txt


def cutlass_include_dir() -> Path:
    candidates = [ROOT / "third_party" / "cutlass" / "include"]
    try:
        import cutlass_library  # nvidia-cutlass package
        candidates.append(Path(cutlass_library.__file__).parent / "source" / "include")
    except ImportError:
        pass
    for inc in candidates:
        version_h = inc / "cutlass" / "version.h"
        if not version_h.exists():
            continue
        text = version_h.read_text()
        found = tuple(int(re.search(rf"#define CUTLASS_{p} (\d+)", text).group(1))
                      for p in ("MAJOR", "MINOR", "PATCH"))
        if found != CUTLASS_VERSION:
            sys.exit(f"CUTLASS at {inc} is {found}, the build is pinned to {CUTLASS_VERSION}")
        return inc
    sys.exit("CUTLASS headers not found: run `git submodule update --init third_party/cutlass` "
             "or `pip install -r requirements/build.txt` (nvidia-cutlass==4.2.0.0)")


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import torch  # from the build environment (--no-build-isolation)

        torch_dir = Path(torch.__file__).parent
        build_temp = Path(self.build_temp) / "custom_fp8"
        build_temp.mkdir(parents=True, exist_ok=True)
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        subprocess.check_call([
            "cmake", str(ROOT), *generator,
            f"-DCUSTOM_FP8_CUDA_ARCHS={os.environ.get('CUSTOM_FP8_CUDA_ARCHS', '90a')}",
            f"-DCUTLASS_INCLUDE_DIR={cutlass_include_dir()}",
            f"-DTORCH_INCLUDE_DIR={torch_dir / 'include'}",
            f"-DTORCH_LIBRARY_DIR={torch_dir / 'lib'}",
            f"-DPython3_EXECUTABLE={sys.executable}",
        ], cwd=build_temp)
        jobs = os.environ.get("MAX_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call(["cmake", "--build", ".", "-j", jobs], cwd=build_temp)
        target = Path(self.get_ext_fullpath(ext.name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(build_temp / "_C.abi3.so", target)

    def get_ext_filename(self, fullname: str) -> str:
        return fullname.replace(".", os.sep) + ".abi3.so"


# The overlay's modules outside vllm.custom_fp8, e.g.
# vllm.model_executor.kernels.linear.scaled_mm.custom_fp8: single modules in
# packages that upstream's vllm provides (their __init__.py is not ours to ship).
OVERLAY_MODULES = sorted(
    ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for path in (ROOT / "vllm").rglob("*.py")
    if (ROOT / "vllm" / "custom_fp8") not in path.parents)

ext_modules = [] if os.environ.get("CUSTOM_FP8_SKIP_CUDA") == "1" else [
    Extension("vllm.custom_fp8._C", sources=[])]

setup(
    packages=find_namespace_packages(include=["vllm.custom_fp8", "vllm.custom_fp8.*"]),
    py_modules=OVERLAY_MODULES,
    ext_modules=ext_modules,
    cmdclass={"build_ext": CMakeBuild},
    # The library calls no CPython API (torch's stable ABI; torch loads it),
    # so one wheel serves every Python the package supports.
    options={"bdist_wheel": {"py_limited_api": "cp310"}} if ext_modules else {},
)
