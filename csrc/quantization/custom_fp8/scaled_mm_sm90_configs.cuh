// The compiled configurations of the sm_90a scaled GEMM (listed by name in
// scaled_mm_sm90.h) and the table that runs one by id. Which one runs for a
// shape is decided in scaled_mm_dispatch.cu; device code is in
// scaled_mm_sm90.cuh.
//
// Every configuration promotes the FP8 tensor-core partial sums to float32
// every 128, 256 or 512 of K (a *_promoteN variant runs the same kernel as
// its base with a longer promotion interval, a runtime argument). The promotion
// buffer doubles the accumulator registers, so no consumer warpgroup owns
// more than 64 x 128 accumulators: larger per-warpgroup tiles spill.
#pragma once

#include <array>

#include "scaled_mm_sm90.cuh"

namespace custom_fp8::sm90 {

using cutlass::epilogue::TmaWarpSpecialized;
using cutlass::epilogue::TmaWarpSpecializedCooperative;
using cutlass::gemm::KernelTmaWarpSpecialized;
using cutlass::gemm::KernelTmaWarpSpecializedCooperative;
using cutlass::gemm::KernelTmaWarpSpecializedPingpong;
using cutlass::gemm::StreamKScheduler;

namespace configs {

// Swap-AB, data-parallel: out^T tiles of 64 weight rows x 16/32/64 tokens,
// one consumer warpgroup, 256-deep k-tiles (promotion every k-tile, so every
// 256 of K; the 128-deep tiles they replaced were 3-17% slower, 86102e8).
// M in (0, 64], and M in (64, 128] while the tiles fit one wave (the
// analytic model; the tuned tables mostly agree).
struct swap_64x16x256 : GemmConfig<Shape<_64, _16, _256>, Shape<_1, _1, _1>,
                                   KernelTmaWarpSpecialized, TmaWarpSpecialized, true> {};
struct swap_64x32x256 : GemmConfig<Shape<_64, _32, _256>, Shape<_1, _1, _1>,
                                   KernelTmaWarpSpecialized, TmaWarpSpecialized, true> {};
struct swap_64x64x256 : GemmConfig<Shape<_64, _64, _256>, Shape<_1, _1, _1>,
                                   KernelTmaWarpSpecialized, TmaWarpSpecialized, true> {};

// Swap-AB, stream-K: K is split across the SMs when N / 128 tiles leave most
// of them idle. The tuned tables pick them for some decode shapes, the
// analytic model at M in (128, 256] while 128 x 64 tiles fit one wave.
// Deterministic reduction.
struct swap_128x16x128_streamk
    : GemmConfig<Shape<_128, _16, _128>, Shape<_1, _1, _1>, KernelTmaWarpSpecializedCooperative,
                 TmaWarpSpecializedCooperative, true, StreamKScheduler> {};
struct swap_128x32x128_streamk
    : GemmConfig<Shape<_128, _32, _128>, Shape<_1, _1, _1>, KernelTmaWarpSpecializedCooperative,
                 TmaWarpSpecializedCooperative, true, StreamKScheduler> {};
struct swap_128x64x128_streamk
    : GemmConfig<Shape<_128, _64, _128>, Shape<_1, _1, _1>, KernelTmaWarpSpecializedCooperative,
                 TmaWarpSpecializedCooperative, true, StreamKScheduler> {};

// M in (64, 128]: two consumer warpgroups alternating on 64 x 128 tiles.
struct tile_64x128x128_pingpong
    : GemmConfig<Shape<_64, _128, _128>, Shape<_2, _1, _1>, KernelTmaWarpSpecializedPingpong,
                 TmaWarpSpecialized, false> {};
// Large M: persistent, two warpgroups splitting a 128 x 128 tile, A tiles
// multicast across a 2x1 cluster.
struct tile_128x128x128 : GemmConfig<Shape<_128, _128, _128>, Shape<_2, _1, _1>,
                                     KernelTmaWarpSpecializedCooperative,
                                     TmaWarpSpecializedCooperative, false> {};
// Mid M (a few waves or less): the same tile with stream-K.
struct tile_128x128x128_streamk
    : GemmConfig<Shape<_128, _128, _128>, Shape<_1, _1, _1>, KernelTmaWarpSpecializedCooperative,
                 TmaWarpSpecializedCooperative, false, StreamKScheduler> {};

// Longer promotion intervals: the main loop waits for the tensor cores less
// often (every other k-tile for 256 on 128-deep tiles; every other 256-deep
// k-tile for 512). Same kernels as their bases; the tuner takes one only
// where it is faster (benchmarks/tune_scaled_mm.py).
template <class Base, int PromoteEveryK>
struct Promote : Base {
  static constexpr int kPromoteEveryK = PromoteEveryK;
};
struct swap_64x16x256_promote512 : Promote<swap_64x16x256, 512> {};
struct swap_64x32x256_promote512 : Promote<swap_64x32x256, 512> {};
struct swap_64x64x256_promote512 : Promote<swap_64x64x256, 512> {};
struct swap_128x16x128_streamk_promote256 : Promote<swap_128x16x128_streamk, 256> {};
struct swap_128x32x128_streamk_promote256 : Promote<swap_128x32x128_streamk, 256> {};
struct swap_128x64x128_streamk_promote256 : Promote<swap_128x64x128_streamk, 256> {};
struct tile_64x128x128_pingpong_promote256 : Promote<tile_64x128x128_pingpong, 256> {};
struct tile_128x128x128_promote256 : Promote<tile_128x128x128, 256> {};
struct tile_128x128x128_streamk_promote256 : Promote<tile_128x128x128_streamk, 256> {};

}  // namespace configs

// run_scaled_mm of configuration `name` with output ElementD. Every one is
// compiled once, in the translation unit of its group and dtype
// (scaled_mm_sm90_{swap,streamk,tile}_{bf16,fp16}.cu): six compiler
// processes, none holding every CUTLASS kernel at once. Elsewhere they are
// extern.
#define CUSTOM_FP8_SCALED_MM_RUNNER(name, ElementD) \
  void run_scaled_mm<ScaledMmKernel<ElementD, configs::name>>(const ScaledMmArgs&, cudaStream_t)
#define CUSTOM_FP8_EXTERN_RUNNERS(name)                                   \
  extern template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::bfloat16_t); \
  extern template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::half_t);
CUSTOM_FP8_SCALED_MM_CUTLASS_CONFIGS(CUSTOM_FP8_EXTERN_RUNNERS)
#undef CUSTOM_FP8_EXTERN_RUNNERS

template <class ElementD>
void run_config(const ScaledMmArgs& p, int config, cudaStream_t stream) {
  using Runner = void (*)(const ScaledMmArgs&, cudaStream_t);
#define CUSTOM_FP8_CONFIG_RUNNER(name) &run_scaled_mm<ScaledMmKernel<ElementD, configs::name>>,
#define CUSTOM_FP8_SPLITK_RUNNER(name) &run_splitk_mm<ElementD, configs::name::kTokens>,
#define CUSTOM_FP8_WAVE_RUNNER(name) \
  &run_wave_mm<ElementD, configs::name::kBlockM, configs::name::kBlockN, configs::name::kClusterN>,
  static constexpr Runner runners[] = {
      CUSTOM_FP8_SCALED_MM_CUTLASS_CONFIGS(CUSTOM_FP8_CONFIG_RUNNER)
          CUSTOM_FP8_SCALED_MM_SPLITK_CONFIGS(CUSTOM_FP8_SPLITK_RUNNER)
              CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(CUSTOM_FP8_WAVE_RUNNER)};
#undef CUSTOM_FP8_WAVE_RUNNER
#undef CUSTOM_FP8_SPLITK_RUNNER
#undef CUSTOM_FP8_CONFIG_RUNNER
  runners[config](p, stream);
}

}  // namespace custom_fp8::sm90
