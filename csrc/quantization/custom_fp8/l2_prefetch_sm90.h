// The decode lever of docs/performance.md ("Decode: the next weight in L2"):
// right after a decode GEMM, the weight the next projection's GEMM reads is
// prefetched into L2, so its stream runs while attention, the norm or the
// activation run, and the GEMM then reads it from L2. Free of CUTLASS headers.
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

namespace custom_fp8::sm90 {

// Up to this many tokens a GEMM prefetches the next weight: the decode range
// (M <= 64), where a GEMM is a weight stream. Above it the weight is read by
// many M tiles and mostly from L2 already.
constexpr int64_t kPrefetchMaxTokens = 64;

// Whether the GEMMs prefetch the next weight: VLLM_CUSTOM_FP8_PREFETCH=1
// (read once per process). A switch of the library, not of the graph: vLLM
// passes the next weight either way, so its compile cache holds for both.
bool l2_prefetch_enabled();

// Prefetches the first min(bytes, budget) bytes at `p` into L2, where the
// budget (l2_prefetch_budget, scaled_mm_dispatch.cu) is a fixed share of the
// device's L2; nothing where l2_prefetch_enabled() is false. Launched with
// PDL where the GEMMs are (VLLM_CUSTOM_FP8_PDL):
// it starts when the GEMM before it has issued its last MMA and waits for
// that GEMM to finish before it exits, so the stream order of everything
// after it is unchanged. The bytes are only read.
void l2_prefetch(const void* p, int64_t bytes, cudaStream_t stream);

// The bytes one prefetch may bring into L2 on the current device, and its
// SM count (the grid's upper bound): scaled_mm_dispatch.cu, which reads the
// device once.
int64_t l2_prefetch_budget();
int64_t sm_count();

}  // namespace custom_fp8::sm90
