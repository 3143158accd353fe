# Device side of tools/gpu/block_baselines_bundle.sh: upstream vLLM 0.25.1's Hopper block-FP8
# kernels (DeepGEMM, FlashInfer) from .carry/block. From the repo root on the GPU machine:
#   source tools/gpu/block_env.sh                # unpack once into $BLOCK_SITE, export the env
#   python3 benchmarks/upstream_block.py         # smoke test: JIT-builds and runs both kernels
# JIT caches go to $BLOCK_CACHE (carry it back through $OUT to skip the builds next time).
_blk_here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.carry/block
export BLOCK_SITE=${BLOCK_SITE:-/tmp/block_site} BLOCK_CACHE=${BLOCK_CACHE:-/tmp/block_cache}
_blk_setup() {
  if [ ! -f "$BLOCK_SITE/.block_unpacked" ]; then
    mkdir -p "$BLOCK_SITE" "$BLOCK_CACHE" || return 1
    tar -xJf "$_blk_here/deep_gemm.tar.xz" -C "$BLOCK_SITE" || return 1
    tar -xJf "$_blk_here"/flashinfer-0.6.13-sm90.tar.xz -C "$BLOCK_SITE" || return 1
    python3 -m zipfile -e "$(ls "$_blk_here"/apache_tvm_ffi-*.whl | head -1)" "$BLOCK_SITE" || return 1  # pure wheel: unzip = install
    [ ! -f "$_blk_here/jit.tar.xz" ] || tar -xJf "$_blk_here/jit.tar.xz" -C "$BLOCK_CACHE" || return 1
    touch "$BLOCK_SITE/.block_unpacked"
  fi
  case ":${PYTHONPATH:-}:" in *":$BLOCK_SITE:"*) ;; *) export PYTHONPATH="$BLOCK_SITE${PYTHONPATH:+:$PYTHONPATH}";; esac
  export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
  case ":$PATH:" in *":$CUDA_HOME/bin:"*) ;; *) export PATH="$CUDA_HOME/bin:$PATH";; esac
  command -v ninja >/dev/null || export PATH="$(python3 -c 'import ninja; print(ninja.BIN_DIR)'):$PATH"
  export DG_JIT_CACHE_DIR=${DG_JIT_CACHE_DIR:-$BLOCK_CACHE/deep_gemm}       # vLLM: $VLLM_CACHE_ROOT/deep_gemm
  export FLASHINFER_WORKSPACE_BASE=${FLASHINFER_WORKSPACE_BASE:-$BLOCK_CACHE}  # -> .cache/flashinfer/0.6.13/90a/cached_ops
  export TRTLLM_DG_CACHE_DIR=${TRTLLM_DG_CACHE_DIR:-$BLOCK_CACHE/trtllm_dg}  # flashinfer's runtime nvcc JIT (else ~/.tensorrt_llm)
  export TVM_FFI_CACHE_DIR=${TVM_FFI_CACHE_DIR:-$BLOCK_CACHE/tvm-ffi}
  # FlashInfer's JIT build wants nvrtc.h, cublasLt.h, cublas_v2.h, curand_kernel.h under
  # $CUDA_HOME/include and links -lcudart -lcuda -lnvrtc from $CUDA_HOME/lib64[/stubs]; a toolkit
  # assembled from pip wheels lacks some of them: take them from torch's nvidia/cu13 wheels.
  local nv ovl h lc
  nv=$(python3 -c 'import nvidia, os; print(next((os.path.join(p, "cu13") for p in nvidia.__path__ if os.path.isdir(os.path.join(p, "cu13", "lib"))), ""))' 2>/dev/null)
  ovl=$BLOCK_CACHE/cuda_overlay; mkdir -p "$ovl/lib"
  for h in nvrtc.h cublasLt.h cublas_v2.h curand_kernel.h; do
    if [ ! -f "$CUDA_HOME/include/$h" ] && [ -n "$nv" ] && [ -f "$nv/include/$h" ]; then
      export FLASHINFER_EXTRA_CFLAGS="-isystem $nv/include" FLASHINFER_EXTRA_CUDAFLAGS="-isystem $nv/include"
    fi
  done
  [ -e "$CUDA_HOME/lib64/libnvrtc.so" ] || [ -z "$nv" ] || ln -sf "$nv/lib/libnvrtc.so.13" "$ovl/lib/libnvrtc.so"
  [ -e "$CUDA_HOME/lib64/libcudart.so" ] || [ -z "$nv" ] || ln -sf "$nv/lib/libcudart.so.13" "$ovl/lib/libcudart.so"
  if ! ls "$CUDA_HOME/lib64/stubs/libcuda.so" "$CUDA_HOME/lib64/libcuda.so" /usr/lib/x86_64-linux-gnu/libcuda.so \
          /usr/lib64/libcuda.so /lib/x86_64-linux-gnu/libcuda.so >/dev/null 2>&1; then
    lc=$( (ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}'; \
           ls /usr/lib/x86_64-linux-gnu/libcuda.so.1 /usr/lib64/libcuda.so.1 /usr/local/nvidia/lib64/libcuda.so.1 2>/dev/null) | head -1)
    [ -n "$lc" ] && ln -sf "$lc" "$ovl/lib/libcuda.so"
  fi
  export FLASHINFER_EXTRA_LDFLAGS="-L$ovl/lib"
  [ -z "$nv" ] || case ":${LD_LIBRARY_PATH:-}:" in *":$nv/lib:"*) ;; *) export LD_LIBRARY_PATH="$nv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}";; esac
  echo "block baselines: PYTHONPATH=$PYTHONPATH CUDA_HOME=$CUDA_HOME nvidia=$nv overlay=$(ls "$ovl/lib" | tr '\n' ' ')${FLASHINFER_EXTRA_CUDAFLAGS:+ +$FLASHINFER_EXTRA_CUDAFLAGS}"
}
_blk_setup || echo "block baselines: setup FAILED" >&2
