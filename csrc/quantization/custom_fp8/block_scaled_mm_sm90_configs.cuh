// Kernel configurations of the sm_90a block-scaled GEMM and the dispatch
// that picks one (host only; device code in block_scaled_mm_sm90.cuh and, for
// the wave GEMM, wave_mm_sm90.cuh).
#pragma once

#include <iterator>

#include "block_scaled_mm_sm90.cuh"

namespace custom_fp8::sm90 {

using cutlass::gemm::KernelTmaWarpSpecializedCooperativeFP8BlockScaledAccum;
using cutlass::gemm::KernelTmaWarpSpecializedPingpongFP8BlockScaledAccum;

// M in (0, 64], or any M whose activation-scale columns are not 16-byte
// aligned (the non-swapped kernel loads them with TMA): out^T tiles of
// 128 (N) x 16 (M).
using BlockConfigSwap = GemmConfig<Shape<_128, _16, _128>, Shape<_1, _1, _1>,
                                   KernelTmaWarpSpecializedPingpongFP8BlockScaledAccum,
                                   cutlass::epilogue::TmaWarpSpecialized, true>;
// M in (64, inf)
using BlockConfigLarge = GemmConfig<Shape<_128, _128, _128>, Shape<_1, _2, _1>,
                                    KernelTmaWarpSpecializedCooperativeFP8BlockScaledAccum,
                                    cutlass::epilogue::TmaWarpSpecializedCooperative, false>;

template <class ElementD>
void run_block_cutlass(const BlockScaledMmArgs& p, cudaStream_t stream) {
  if (p.m <= 64 || p.m % 4 != 0 || p.scale_a_ld % 4 != 0)
    return run_block_scaled_mm<BlockScaledMmKernel<ElementD, BlockConfigSwap>>(p, stream);
  return run_block_scaled_mm<BlockScaledMmKernel<ElementD, BlockConfigLarge>>(p, stream);
}

template <class ElementD>
void dispatch_block_scaled_mm(const BlockScaledMmArgs& p, int config, cudaStream_t stream) {
  using Runner = void (*)(const BlockScaledMmArgs&, cudaStream_t);
  // In the order of CUSTOM_FP8_BLOCK_SCALED_MM_CONFIG_LIST.
  static constexpr Runner runners[] = {&run_block_cutlass<ElementD>,
                                       &run_block_wave_mm<ElementD, 256, 1>,
                                       &run_block_wave_mm<ElementD, 128, 1>,
                                       &run_block_wave_mm<ElementD, 256, 2>,
                                       &run_block_wave_mm<ElementD, 128, 2>};
  static_assert(std::size(runners) == kBlockScaledMmConfigs);
  runners[config < 0 ? 0 : config](p, stream);
}

}  // namespace custom_fp8::sm90
