// The L2 prefetch of the next projection's weight (l2_prefetch_sm90.h).
// One warp per CTA; each lane issues cp.async.bulk.prefetch.L2 (a TMA bulk
// prefetch: no registers, no shared memory, nothing to wait for) over 8 KB
// chunks, so a few thousand instructions start the whole stream and the
// grid holds its SMs only for as long as the GEMM before it still runs.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "gemm_run_sm90.cuh"
#include "l2_prefetch_sm90.h"
#include "splitk_dispatch_sm90.h"
#include "torch_utils.h"

namespace custom_fp8::sm90 {
namespace {

constexpr int64_t kChunkBytes = 8 << 10;      // per cp.async.bulk.prefetch
constexpr int64_t kBytesPerCta = 256 << 10;  // 32 lanes x 32 KB: few CTAs, soon resident
constexpr int kThreads = 32;

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(const char* base, int64_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // A PDL-launched kernel after this one may start now: it waits for this
  // grid, which waits for the GEMM, before it reads anything.
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
  const int64_t stride = int64_t(gridDim.x) * kThreads * kChunkBytes;
  for (int64_t off = (int64_t(blockIdx.x) * kThreads + threadIdx.x) * kChunkBytes; off < bytes;
       off += stride) {
    const uint32_t size = static_cast<uint32_t>(bytes - off < kChunkBytes ? bytes - off
                                                                          : kChunkBytes);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(base + off), "r"(size)
                 : "memory");
  }
  // Launched with PDL, this grid may run before the GEMM ahead of it has
  // finished; it ends only after it, so a kernel launched after this one
  // (with or without PDL) still runs after the GEMM, as the stream order says.
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

}  // namespace

bool l2_prefetch_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("VLLM_CUSTOM_FP8_PREFETCH");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return enabled;
}

void l2_prefetch(const void* p, int64_t bytes, cudaStream_t stream) {
  if (!l2_prefetch_enabled()) return;
  // The bulk prefetch takes 16-byte aligned addresses and sizes; the few
  // bytes outside them are simply not prefetched.
  const auto addr = reinterpret_cast<uintptr_t>(p);
  const uintptr_t begin = (addr + 15) & ~uintptr_t(15);
  const int64_t end = static_cast<int64_t>(addr) + std::min(bytes, l2_prefetch_budget());
  const int64_t aligned_bytes = (end - static_cast<int64_t>(begin)) & ~int64_t(15);
  if (aligned_bytes <= 0) return;

  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = pdl_enabled();
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(
      std::clamp<int64_t>(cdiv(aligned_bytes, kBytesPerCta), 1, sm_count())));
  config.blockDim = dim3(kThreads);
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = 1;
  const cudaError_t status = cudaLaunchKernelEx(
      &config, l2_prefetch_kernel, reinterpret_cast<const char*>(begin), aligned_bytes);
  STD_TORCH_CHECK(status == cudaSuccess, "custom_fp8.scaled_mm: L2 prefetch launch failed: ",
                  cudaGetErrorString(status));
}

}  // namespace custom_fp8::sm90
