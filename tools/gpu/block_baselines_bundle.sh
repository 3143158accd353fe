#!/bin/bash
# Bundle upstream vLLM 0.25.1's Hopper block-FP8 GEMM path as a benchmark baseline for the
# offline GPU machine (Python 3.12, torch 2.11.0+cu130, nvcc 13.0; no vllm, flashinfer,
# apache-tvm-ffi there). Upstream's FlashInferFp8DeepGEMMDynamicBlockScaledKernel runs
# FlashInfer's fp8_blockscale_gemm_sm90 (bf16 input) for M < 32 and DeepGEMM's fp8_gemm_nt
# for M >= 32. Run here, from the repo root:
#   bash tools/gpu/block_baselines_bundle.sh
# Inputs (downloaded with pip when missing):
#   VLLM_WHEEL  vllm-0.25.1 wheel (default /tmp/e2e-build/vllm-0.25.1-cp38-abi3-manylinux_2_28_x86_64.whl)
#   FI_WHEEL    flashinfer_python-0.6.13 wheel (default /tmp/fi/flashinfer_python-0.6.13-py3-none-any.whl)
#   TVM_FFI_VERSION  apache-tvm-ffi for cp312 (default 0.1.9, the version vLLM 0.25.1 pins;
#                    flashinfer allows >=0.1.6,<0.2,!=0.1.8,!=0.1.8.post0)
#   FI_FULL=1   carry flashinfer's whole data/ tree instead of the sm90 block-scale closure
# Writes (git-ignored) under .carry/block/:
#   deep_gemm.tar.xz               vllm/third_party/deep_gemm (DeepGEMM 2.5.0 as vendored by vLLM)
#                                  as top-level deep_gemm/: Python files, the cp312 _C .so only,
#                                  include/{deep_gemm,cute,cutlass} whole (its JIT reads them)
#   flashinfer-0.6.13-sm90.tar.xz  flashinfer/ (all Python) + dist-info; of data/ only what the
#                                  fp8_blockscale_gemm_sm90 JIT build and its runtime nvcc JIT include
#   apache_tvm_ffi-*.whl           the real wheel (flashinfer's JIT loads modules through it and
#                                  compiles against its include/ and dlpack headers)
# On the device, tools/gpu/block_env.sh unpacks them and sets the environment, and
# benchmarks/upstream_block.py calls upstream's path (run as a script: a smoke test):
#   run(command="source tools/gpu/block_env.sh && python3 benchmarks/upstream_block.py", carry=[".carry"])
set -euo pipefail
ROOT=$(pwd)
[ -d "$ROOT/.git" ] || [ -f "$ROOT/.git" ] || { echo "run from the repo root" >&2; exit 1; }
OUT=.carry/block
WORK=${BLOCK_WORK:-/tmp/block-bundle}
VLLM_WHEEL=${VLLM_WHEEL:-/tmp/e2e-build/vllm-0.25.1-cp38-abi3-manylinux_2_28_x86_64.whl}
FI_WHEEL=${FI_WHEEL:-/tmp/fi/flashinfer_python-0.6.13-py3-none-any.whl}
TVM_FFI_VERSION=${TVM_FFI_VERSION:-0.1.9}
FI_FULL=${FI_FULL:-0}
CUDA_INC=${CUDA_HOME:-/usr/local/cuda}/include
PIPDL=(python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12
       --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64
       --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)
TAR=(tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0)
mkdir -p "$WORK" "$OUT"
git check-ignore -q "$OUT/x" || { echo "$OUT is not git-ignored" >&2; exit 1; }
rm -f "$OUT"/deep_gemm.tar.xz "$OUT"/flashinfer-*.tar.xz "$OUT"/apache_tvm_ffi-*.whl "$OUT"/SHA256SUMS

# ---------------------------------------------------------------- inputs
if [ ! -f "$VLLM_WHEEL" ]; then
  "${PIPDL[@]}" -d "$WORK" vllm==0.25.1
  VLLM_WHEEL=$(ls "$WORK"/vllm-0.25.1-*.whl)
fi
if [ ! -f "$FI_WHEEL" ]; then
  "${PIPDL[@]}" -d "$WORK" flashinfer-python==0.6.13
  FI_WHEEL=$(ls "$WORK"/flashinfer_python-0.6.13-*.whl)
fi
rm -rf "$WORK/tvm" && mkdir -p "$WORK/tvm"
"${PIPDL[@]}" -d "$WORK/tvm" "apache-tvm-ffi==$TVM_FFI_VERSION"
TVM_WHL=$(ls "$WORK"/tvm/apache_tvm_ffi-*.whl)
echo "inputs: $VLLM_WHEEL, $FI_WHEEL, $TVM_WHL"

# ---------------------------------------------------------------- (a) deep_gemm
DG=$WORK/dg
rm -rf "$DG" && mkdir -p "$DG"
unzip -q "$VLLM_WHEEL" 'vllm/third_party/deep_gemm/*' -d "$DG"
mv "$DG/vllm/third_party/deep_gemm" "$DG/deep_gemm" && rm -rf "$DG/vllm"
find "$DG/deep_gemm" -maxdepth 1 -name '_C.cpython-*.so' ! -name '_C.cpython-312-x86_64-linux-gnu.so' -delete
find "$DG/deep_gemm" -name __pycache__ -prune -exec rm -rf {} +
for p in _C.cpython-312-x86_64-linux-gnu.so __init__.py include/deep_gemm include/cute include/cutlass \
         include/deep_gemm/impls/sm90_fp8_gemm_1d2d.cuh; do
  [ -e "$DG/deep_gemm/$p" ] || { echo "deep_gemm: missing $p" >&2; exit 1; }
done
# the package imports only relatively (`from . import _C`, ...); _C.init(<package dir>, CUDA_HOME)
# takes <package dir>/include as the JIT include root, so the directory must keep its layout
if grep -rnE '^\s*(from|import) vllm' "$DG/deep_gemm" --include=*.py; then
  echo "deep_gemm: absolute vllm import found" >&2; exit 1
fi
"${TAR[@]}" -C "$DG" -cf - deep_gemm | xz -9e -T2 > "$OUT/deep_gemm.tar.xz"
echo "deep_gemm _C NEEDED:"
readelf -d "$DG/deep_gemm/_C.cpython-312-x86_64-linux-gnu.so" | awk '/NEEDED|RPATH|RUNPATH/{print "  " $NF}'

# ---------------------------------------------------------------- (b) flashinfer + tvm-ffi
FI=$WORK/fi
rm -rf "$FI" && mkdir -p "$FI"
unzip -q "$FI_WHEEL" 'flashinfer/*' 'flashinfer_python-0.6.13.dist-info/*' -d "$FI"
unzip -q -o "$TVM_WHL" 'tvm_ffi/include/*' 'tvm_ffi/3rdparty/dlpack/include/*' -d "$WORK/tvm/x"
(cd "$FI" && find flashinfer -path flashinfer/data -prune -o -type f ! -path '*/__pycache__/*' -print
 find flashinfer_python-0.6.13.dist-info -type f) > "$WORK/fi_files.txt"
if [ "$FI_FULL" = 1 ]; then
  (cd "$FI" && find flashinfer/data -type f) >> "$WORK/fi_files.txt"
else
  # Header closure of the JIT module gen_fp8_blockscale_gemm_sm90_module() builds (sources and
  # include dirs as in flashinfer/jit/gemm/fp8_blockscale.py and jit/cpp_ext.py), over-approximated:
  # every #include (conditionals ignored) resolved against every search dir, recursing, CUDA's own
  # headers included (they pull libcu++ headers, which the vendored -I cccl copy then serves).
  # Plus: all of cccl/libcudacxx/include (margin for CUDA header versions) and the TRT-LLM
  # deep_gemm headers that the module's runtime JIT passes to nvcc (-I csrc/nv_internal/tensorrt_llm).
  python3 - "$FI/flashinfer/data" "$WORK/tvm/x/tvm_ffi" "$CUDA_INC" >> "$WORK/fi_files.txt" <<'EOF'
import os, re, sys
data, tvm, cuda_inc = sys.argv[1:4]
N = "csrc/nv_internal"
srcs = [f"{N}/tensorrt_llm/kernels/cutlass_kernels/fp8_blockscale_gemm/fp8_blockscale_gemm.cu",
        "csrc/fp8_blockscale_gemm_sm90_binding.cu",
        "csrc/fused_moe/cutlass_backend/deepgemm_jit_setup.cu",
        f"{N}/cpp/common/envUtils.cpp", f"{N}/cpp/common/logger.cpp", f"{N}/cpp/common/stringUtils.cpp",
        f"{N}/cpp/common/tllmException.cpp", f"{N}/cpp/common/memoryUtils.cu"]
rt = f"{N}/tensorrt_llm/deep_gemm"
srcs += [f"{rt}/{f}" for f in sorted(os.listdir(os.path.join(data, rt)))]
incs = [N, f"{N}/include", f"{N}/tensorrt_llm/cutlass_extensions/include",
        f"{N}/tensorrt_llm/kernels/cutlass_kernels/include", f"{N}/tensorrt_llm/kernels/cutlass_kernels",
        f"{N}/tensorrt_llm", "cccl/cub", "cccl/libcudacxx/include", "cccl/thrust",
        "include", "csrc", "cutlass/include", "cutlass/tools/util/include", "spdlog/include"]
dirs = [os.path.join(data, d) for d in incs]
dirs += [os.path.join(tvm, "include"), os.path.join(tvm, "3rdparty/dlpack/include")]
roots = [os.path.join(data, s) for s in srcs]
if os.path.isdir(cuda_inc):
    dirs += [cuda_inc, os.path.join(cuda_inc, "cccl")]
    roots += [os.path.join(cuda_inc, h) for h in ("cuda_runtime.h", "cuda.h", "cuda_bf16.h", "cuda_fp8.h",
                                                  "cuda_fp16.h", "cudaTypedefs.h")]
else:
    print(f"warning: no CUDA headers at {cuda_inc}; relying on the whole libcudacxx copy", file=sys.stderr)
for r in roots[:len(srcs)]:
    if not os.path.isfile(r):
        sys.exit(f"flashinfer source missing: {r}")
INC = re.compile(r'^\s*#\s*include(?:_next)?\s*[<"]([^>"]+)[>"]', re.M)
ANY = re.compile(r'^\s*#\s*include(?:_next)?\s+([^<"\s].*)$', re.M)
MACROS = {  # computed includes met in this closure
    "CUDA_STD_HEADER": ["cuda/std/{}", "{}"],
    "__THRUST_HOST_SYSTEM_ALGORITH_DETAIL_HEADER_INCLUDE":
        ["thrust/system/{}/detail/{{}}".format(s) for s in ("cpp", "omp", "tbb")],
    "__THRUST_DEVICE_SYSTEM_ALGORITH_DETAIL_HEADER_INCLUDE":
        ["thrust/system/{}/detail/{{}}".format(s) for s in ("cuda", "cpp", "omp", "tbb")]}
seen, todo, unknown = set(), [os.path.realpath(r) for r in roots if os.path.isfile(r)], set()
dirs = [os.path.realpath(d) for d in dirs if os.path.isdir(d)]
while todo:
    f = todo.pop()
    if f in seen:
        continue
    seen.add(f)
    txt = open(f, errors="replace").read()
    names = INC.findall(txt)
    for m in ANY.finditer(txt):
        c = m.group(1).strip()
        mm = re.match(r'(\w+)\(([\w./]+)\)', c)
        if mm and mm.group(1) in MACROS:
            names += [t.format(mm.group(2)) for t in MACROS[mm.group(1)]]
        elif not c.startswith("//"):
            unknown.add((f, c))
    for n in names:
        for d in [os.path.dirname(f)] + dirs:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                todo.append(os.path.realpath(p))
data_r = os.path.realpath(data)
for f, c in sorted(unknown):
    if f.startswith(data_r + "/"):
        sys.exit(f"unresolved computed include in {f}: {c}")
keep = {os.path.relpath(f, data_r) for f in seen if f.startswith(data_r + "/")}
for sub in ("cccl/libcudacxx/include", rt):
    for dp, _, fs in os.walk(os.path.join(data, sub)):
        keep.update(os.path.relpath(os.path.join(dp, x), data) for x in fs)
print("\n".join("flashinfer/data/" + k for k in sorted(keep)))
EOF
fi
"${TAR[@]}" -C "$FI" -cf - -T "$WORK/fi_files.txt" | xz -9e -T2 > "$OUT/flashinfer-0.6.13-sm90.tar.xz"
cp "$TVM_WHL" "$OUT/"
echo "flashinfer: $(wc -l < "$WORK/fi_files.txt") files ($(grep -c '^flashinfer/data/' "$WORK/fi_files.txt") of data/)"

(cd "$OUT" && sha256sum deep_gemm.tar.xz flashinfer-0.6.13-sm90.tar.xz apache_tvm_ffi-*.whl > SHA256SUMS)
echo "sizes (bytes):"
(cd "$OUT" && stat -c '  %s %n' deep_gemm.tar.xz flashinfer-0.6.13-sm90.tar.xz apache_tvm_ffi-*.whl)
echo "  $(du -cb "$OUT"/deep_gemm.tar.xz "$OUT"/flashinfer-*.tar.xz "$OUT"/apache_tvm_ffi-*.whl | tail -1 | cut -f1) total"
