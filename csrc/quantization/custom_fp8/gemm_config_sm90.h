// The knobs of one sm_90a GEMM kernel, shared by the scaled and the
// block-scaled GEMM dispatch tables.
#pragma once

#include "cute/tensor.hpp"

namespace custom_fp8::sm90 {

// One GEMM configuration: what a dispatch table picks per shape.
template <class TileShape_, class ClusterShape_, class KernelSchedule_,
          class EpilogueSchedule_, bool kSwapAB_, class TileScheduler_ = void>
struct GemmConfig {
  using TileShape = TileShape_;                // CTA tile (M', N', K) of the problem CUTLASS sees
  using ClusterShape = ClusterShape_;          // CTAs per cluster (TMA multicast)
  using KernelSchedule = KernelSchedule_;      // main-loop warp specialization
  using EpilogueSchedule = EpilogueSchedule_;  // epilogue warp specialization
  using TileScheduler = TileScheduler_;        // void: the schedule's default; or stream-K
  static constexpr bool kSwapAB = kSwapAB_;    // M' = N, N' = M (small M)
  // K depth between two float32 promotions of the FP8 tensor-core partial
  // sums in the scaled GEMM's main loop: one k-tile, unless a configuration
  // asks for a multiple of it (fewer waits on the tensor cores, longer
  // reduced-precision chains). The block-scaled GEMM applies its scales per
  // 128-deep k-tile and ignores it.
  static constexpr int kPromoteEveryK = cute::size<2>(TileShape{});
};

// A CUTLASS kernel under our name: cutlass::device_kernel<custom_fp8::sm90::
// NamedKernel<...>> instead of upstream vLLM's identical-looking CUTLASS
// symbols, so a profiler trace of the engine shows which GEMM ran.
template <class Kernel>
struct NamedKernel : Kernel {};

}  // namespace custom_fp8::sm90
