// Host-side interface of the sm_90a scaled GEMM: the operands of one call
// and one entry per output dtype. Free of CUTLASS headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace custom_fp8::sm90 {

// Operands of one call, already checked by the entry point (scaled_mm.cu).
struct ScaledMmArgs {
  const void* a;        // [M, K] e4m3, row stride lda
  const void* b;        // [K, N] e4m3, column-major: column stride ldb
  const float* scale_a; // 1 or M values
  const float* scale_b; // 1 or N values
  const void* bias;     // N values of the output dtype, or nullptr
  void* out;            // [M, N], contiguous
  int64_t m, n, k, lda, ldb;
  bool scale_a_per_token, scale_b_per_channel;
};

void scaled_mm_sm90_bf16(const ScaledMmArgs& p, cudaStream_t stream);
void scaled_mm_sm90_fp16(const ScaledMmArgs& p, cudaStream_t stream);

}  // namespace custom_fp8::sm90
