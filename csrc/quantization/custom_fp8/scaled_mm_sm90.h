// Host-side interface of the sm_90a scaled GEMM: the operands of one call
// and one entry per output dtype. Free of CUTLASS headers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>

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
  std::function<void*(size_t)> workspace;  // device scratch for stream-K partial sums
};

// The compiled kernel configurations, in id order (the `config` argument of
// the op and the tuned table refer to them; scaled_mm_sm90_configs.cuh
// defines the CUTLASS ones). swap_*: computes out^T (small M); *_streamk:
// stream-K (deterministic reduction) for too few tiles to fill the GPU;
// *_promoteN: float32 promotion every N of K instead of every k-tile. Three
// CUTLASS groups, each compiled in translation units of its own
// (scaled_mm_sm90_{swap,streamk,tile}_{bf16,fp16}.cu); a *_promoteN variant
// runs its base's kernel, so it stays in its base's group. The stream-K
// group is built without PDL (scaled_mm_sm90_streamk_bf16.cu says why).
// splitk_64xTx128: our own decode kernel (splitk_mm_sm90.cuh), 64 weight rows
// x T tokens per CTA, K split over a cluster, 128-deep k-blocks;
// wave_BxNx128: our own main loop for compute-bound M (wave_mm_sm90.cuh),
// B tokens x N weight rows per CTA in 128-row waves, promotion every 128 of K
// overlapped with the other warpgroup's MMAs; *_cluster2: in pairs of CTAs
// that multicast their shared activation rows. Ours come last, so the
// CUTLASS configurations keep their ids.
#define CUSTOM_FP8_SCALED_MM_SWAP_CONFIGS(X) \
  X(swap_64x16x256)                         \
  X(swap_64x32x256)                         \
  X(swap_64x64x256)                         \
  X(swap_64x16x256_promote512)              \
  X(swap_64x32x256_promote512)              \
  X(swap_64x64x256_promote512)
#define CUSTOM_FP8_SCALED_MM_STREAMK_CONFIGS(X) \
  X(swap_128x16x128_streamk)                   \
  X(swap_128x32x128_streamk)                   \
  X(swap_128x64x128_streamk)                   \
  X(swap_128x16x128_streamk_promote256)        \
  X(swap_128x32x128_streamk_promote256)        \
  X(swap_128x64x128_streamk_promote256)        \
  X(tile_128x128x128_streamk)                  \
  X(tile_128x128x128_streamk_promote256)
#define CUSTOM_FP8_SCALED_MM_TILE_CONFIGS(X) \
  X(tile_64x128x128_pingpong)               \
  X(tile_128x128x128)                       \
  X(tile_64x128x128_pingpong_promote256)    \
  X(tile_128x128x128_promote256)
#define CUSTOM_FP8_SCALED_MM_SPLITK_CONFIGS(X) \
  X(splitk_64x8x128)                          \
  X(splitk_64x16x128)                         \
  X(splitk_64x32x128)                         \
  X(splitk_64x64x128)
#define CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(X) \
  X(wave_256x128x128)                       \
  X(wave_128x192x128)                       \
  X(wave_128x128x128)                       \
  X(wave_256x128x128_cluster2)              \
  X(wave_128x192x128_cluster2)              \
  X(wave_128x128x128_cluster2)
#define CUSTOM_FP8_SCALED_MM_CUTLASS_CONFIGS(X)                                 \
  CUSTOM_FP8_SCALED_MM_SWAP_CONFIGS(X) CUSTOM_FP8_SCALED_MM_STREAMK_CONFIGS(X) \
  CUSTOM_FP8_SCALED_MM_TILE_CONFIGS(X)
#define CUSTOM_FP8_SCALED_MM_CONFIGS(X)                                       \
  CUSTOM_FP8_SCALED_MM_CUTLASS_CONFIGS(X) CUSTOM_FP8_SCALED_MM_SPLITK_CONFIGS(X) \
  CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(X)

#define CUSTOM_FP8_CONFIG_NAME(name) #name ","
// "swap_64x16x256,swap_64x32x256,...," (the library's build info lists it)
#define CUSTOM_FP8_SCALED_MM_CONFIG_LIST CUSTOM_FP8_SCALED_MM_CONFIGS(CUSTOM_FP8_CONFIG_NAME)

int scaled_mm_num_configs();
// The tuned table's choice for (n, k) and the bucket of m, else (and with
// use_tuned false: the tuner compares the two) the analytic model's
// (scaled_mm_dispatch.cu).
int choose_scaled_mm_config(int64_t m, int64_t n, int64_t k, bool use_tuned);

namespace configs {
// The split-K decode kernel's configurations: tokens per CTA (8 to 64, one
// to eight 8-token MMA n-tiles); larger M runs in groups of that many.
template <int Tokens>
struct SplitK {
  static constexpr int kTokens = Tokens;
};
struct splitk_64x8x128 : SplitK<8> {};
struct splitk_64x16x128 : SplitK<16> {};
struct splitk_64x32x128 : SplitK<32> {};
struct splitk_64x64x128 : SplitK<64> {};
// The wave GEMM's configurations: activation rows per CTA tile (one or two
// 128-row waves), weight rows (one WGMMA's N) and CTAs per cluster along N
// (2: the pair multicasts the activation rows its tiles share).
template <int BlockM, int BlockN, int ClusterN = 1>
struct Wave {
  static constexpr int kBlockM = BlockM, kBlockN = BlockN, kClusterN = ClusterN;
};
struct wave_256x128x128 : Wave<256, 128> {};  // two waves: the most MMA work per byte of shared memory
struct wave_128x192x128 : Wave<128, 192> {};  // one wave: half the rows, for M in 128-tile steps
struct wave_128x128x128 : Wave<128, 128> {};
struct wave_256x128x128_cluster2 : Wave<256, 128, 2> {};
struct wave_128x192x128_cluster2 : Wave<128, 192, 2> {};
struct wave_128x128x128_cluster2 : Wave<128, 128, 2> {};
}  // namespace configs

// Runs a split-K configuration (splitk_mm_sm90.cu); ElementD is
// cutlass::bfloat16_t or cutlass::half_t.
template <class ElementD, int kTokens>
void run_splitk_mm(const ScaledMmArgs& p, cudaStream_t stream);
// Runs a wave configuration (wave_mm_sm90.cu).
template <class ElementD, int kBlockM, int kBlockN, int kClusterN>
void run_wave_mm(const ScaledMmArgs& p, cudaStream_t stream);

// Runs configuration `config` (0 <= config < scaled_mm_num_configs()).
void scaled_mm_sm90_bf16(const ScaledMmArgs& p, int config, cudaStream_t stream);
void scaled_mm_sm90_fp16(const ScaledMmArgs& p, int config, cudaStream_t stream);

}  // namespace custom_fp8::sm90
