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

// The configurations, by id (config >= 0 forces one: the tests and the
// bench; -1 is the dispatch, block_scaled_mm_sm90_configs.cuh): CUTLASS's
// blockwise main loop (swap-AB at small or unaligned M), and the wave GEMM
// (wave_mm_sm90.cuh) block-scaled, with 256- or 128-row tiles, alone or in
// pairs of CTAs multicasting the activations.
#define CUSTOM_FP8_BLOCK_SCALED_MM_CONFIG_LIST \
  "cutlass,wave_256x128x128,wave_128x128x128,wave_256x128x128_cluster2,wave_128x128x128_cluster2,"
constexpr int kBlockScaledMmConfigs = 5;

// Runs `config` (-1: the dispatch's choice).
void block_scaled_mm_sm90_bf16(const BlockScaledMmArgs& p, int config, cudaStream_t stream);
void block_scaled_mm_sm90_fp16(const BlockScaledMmArgs& p, int config, cudaStream_t stream);

// The wave GEMM, block-scaled, in kBlockM x 128 tiles, kClusterN CTAs per
// cluster (wave_mm_sm90.cu); ElementD is cutlass::bfloat16_t or
// cutlass::half_t.
template <class ElementD, int kBlockM, int kClusterN>
void run_block_wave_mm(const BlockScaledMmArgs& p, cudaStream_t stream);

}  // namespace custom_fp8::sm90
