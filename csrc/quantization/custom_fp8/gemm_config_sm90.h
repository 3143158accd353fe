// The knobs of one sm_90a GEMM kernel, shared by the scaled and the
// block-scaled GEMM dispatch tables.
#pragma once

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
};

// A CUTLASS kernel under our name: cutlass::device_kernel<custom_fp8::sm90::
// NamedKernel<...>> instead of upstream vLLM's identical-looking CUTLASS
// symbols, so a profiler trace of the engine shows which GEMM ran.
template <class Kernel>
struct NamedKernel : Kernel {};

}  // namespace custom_fp8::sm90
