// Host-side interface of the sm_90a block-scaled GEMM: the operands of one
// call and one entry per output dtype. Free of CUTLASS headers.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace custom_fp8::sm90 {

// Operands of one call, already checked by the entry point (block_scaled_mm.cu).
struct BlockScaledMmArgs {
  const void* a;         // [M, K] e4m3, row stride lda
  const void* b;         // [K, N] e4m3, column-major: column stride ldb
  const float* scale_a;  // [M, K/128] column-major: k-block stride scale_a_ld
  const float* scale_b;  // [K/128, N/128], K-major: n-block stride scale_b_ld
  void* out;             // [M, N], contiguous
  int64_t m, n, k, lda, ldb, scale_a_ld, scale_b_ld;
};

void block_scaled_mm_sm90_bf16(const BlockScaledMmArgs& p, cudaStream_t stream);
void block_scaled_mm_sm90_fp16(const BlockScaledMmArgs& p, cudaStream_t stream);

}  // namespace custom_fp8::sm90
