// M-bucketed kernel configurations of the sm_90a scaled GEMM and the
// dispatch that picks one. Host dispatch only: the device code is in
// scaled_mm_sm90.cuh. One config per bucket; swap-AB below M = 64, where
// the tokens would fill less than one 64-row WGMMA tile.
#pragma once

#include "scaled_mm_sm90.cuh"

namespace custom_fp8::sm90 {

using cutlass::epilogue::TmaWarpSpecialized;
using cutlass::epilogue::TmaWarpSpecializedCooperative;
using cutlass::gemm::KernelTmaWarpSpecialized;
using cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using cutlass::gemm::KernelTmaWarpSpecializedPingpong;

// M in (0, 16]: out^T tiles of 64 (N) x 16 (M), deep K tiles to keep many
// weight bytes in flight.
using ConfigM16 = GemmConfig<Shape<_64, _16, _256>, Shape<_1, _1, _1>,
                             KernelTmaWarpSpecialized, TmaWarpSpecialized, true>;
// M in (16, 32]
using ConfigM32 = GemmConfig<Shape<_64, _32, _256>, Shape<_1, _1, _1>,
                             KernelTmaWarpSpecialized, TmaWarpSpecialized, true>;
// M in (32, 64]
using ConfigM64 = GemmConfig<Shape<_64, _64, _256>, Shape<_1, _1, _1>,
                             KernelTmaWarpSpecialized, TmaWarpSpecialized, true>;
// M in (64, 128]
using ConfigM128 = GemmConfig<Shape<_64, _128, _128>, Shape<_2, _1, _1>,
                              KernelTmaWarpSpecializedPingpong, TmaWarpSpecialized, false>;
// M in (128, 2048]
using ConfigM2048 = GemmConfig<Shape<_128, _128, _128>, Shape<_2, _1, _1>,
                               KernelTmaWarpSpecializedPingpong, TmaWarpSpecialized, false>;
// M in (2048, inf)
using ConfigLarge = GemmConfig<Shape<_256, _128, _128>, Shape<_2, _1, _1>,
                               KernelTmaWarpSpecializedCooperative,
                               TmaWarpSpecializedCooperative, false>;

template <class ElementD>
void dispatch_scaled_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  if (p.m <= 16) return run_scaled_mm<ScaledMmKernel<ElementD, ConfigM16>>(p, stream);
  if (p.m <= 32) return run_scaled_mm<ScaledMmKernel<ElementD, ConfigM32>>(p, stream);
  if (p.m <= 64) return run_scaled_mm<ScaledMmKernel<ElementD, ConfigM64>>(p, stream);
  if (p.m <= 128) return run_scaled_mm<ScaledMmKernel<ElementD, ConfigM128>>(p, stream);
  if (p.m <= 2048) return run_scaled_mm<ScaledMmKernel<ElementD, ConfigM2048>>(p, stream);
  return run_scaled_mm<ScaledMmKernel<ElementD, ConfigLarge>>(p, stream);
}

}  // namespace custom_fp8::sm90
