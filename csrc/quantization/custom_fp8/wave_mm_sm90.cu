// Host side of the wave GEMM (device code: wave_mm_sm90.cuh), per-token /
// per-channel scaled (scaled_mm) and block-scaled (block_scaled_mm): the TMA
// descriptors, the tile order and the persistent launch, with PDL: one CTA
// per SM (at most one per tile), or as many clusters as the GPU runs at
// once, walking the tiles in bands of activation rows that L2 keeps (~24 MB:
// 256 rows at K = 4096 are 1 MB), so each band's activations are read once
// from HBM and each weight tile once per band.
#include <algorithm>

#include "block_scaled_mm_sm90.h"
#include "own_gemm_dispatch_sm90.h"
#include "own_gemm_sm90.h"
#include "scaled_mm_sm90.h"
#include "torch_utils.h"
#include "wave_mm_sm90.cuh"

namespace custom_fp8::sm90 {

static_assert(wave::kBlockK == kTmaBoxK, "a k-block is one TMA box");

// Clusters of `cluster` CTAs of `kernel` the current GPU runs at once: one CTA
// fills an SM, and a cluster's CTAs share a GPC, so with clusters of two a
// GPC of an odd number of SMs leaves one idle.
template <class Kernel>
int64_t max_active_clusters(Kernel kernel, int threads, int smem, int cluster) {
  if (cluster == 1) return device_sms();
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim = {static_cast<unsigned>(cluster), 1, 1};
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(cluster);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem;
  config.attrs = &attr;
  config.numAttrs = 1;
  int n = 0;
  const cudaError_t status = cudaOccupancyMaxActiveClusters(&n, kernel, &config);
  STD_TORCH_CHECK(status == cudaSuccess && n > 0, "custom_fp8: the wave GEMM's clusters of ",
                  cluster, " do not fit the GPU (", cudaGetErrorString(status), ")");
  return static_cast<int64_t>(n);
}

// Launches the wave GEMM on [M, K] x [N, K]^T (both K-major, row strides lda
// and ldb bytes) into `out`, with `block` scales when kBlockScaled.
template <class ElementD, int kBlockM, int kBlockN, int kClusterN, bool kBlockScaled>
void launch_wave_mm(const void* a, const void* b, int64_t k, int64_t lda, int64_t ldb,
                    const ScaledOutput& out, const wave::BlockScales& block,
                    cudaStream_t stream) {
  constexpr int64_t kBandBytes = 24 << 20;
  constexpr int kSmem = wave::kSmemBytes<kBlockM, kBlockN>;
  const auto kernel = &wave::wave_mm_kernel<ElementD, kBlockM, kBlockN, kClusterN, kBlockScaled>;
  // Tiles in the scheduler's units: a cluster's kClusterN tiles along N count as one.
  const int64_t m_tiles = cdiv(out.m, kBlockM), n_tiles = cdiv(out.n, kClusterN * kBlockN);
  const int64_t group_m = std::clamp<int64_t>(kBandBytes / (kBlockM * k), 1, m_tiles);
  const wave::Params params{out,
                            block,
                            static_cast<int>(cdiv(k, wave::kBlockK)),
                            static_cast<int>(m_tiles),
                            static_cast<int>(n_tiles),
                            static_cast<int>(group_m)};
  // Each CTA of a cluster loads its share of the activation rows.
  const CUtensorMap a_map = k_major_tensor_map(a, out.m, k, lda, kBlockM / kClusterN);
  const CUtensorMap b_map = k_major_tensor_map(b, out.n, k, ldb, kBlockN);

  // Asked once per kernel and process (the kernel's resources decide the
  // driver's answer; processes drive one GPU model): a static of this
  // instantiation, not of max_active_clusters, whose template every wave
  // kernel shares (one signature).
  static const int64_t max_clusters =
      max_active_clusters(kernel, wave::kThreads, kSmem, kClusterN);
  const int64_t clusters = std::min(m_tiles * n_tiles, max_clusters);
  launch_own_gemm("wave GEMM", kernel, dim3(static_cast<unsigned>(clusters * kClusterN)),
                  wave::kThreads, kSmem, kClusterN > 1 ? kClusterN : 0, stream, a_map, b_map,
                  params);
}

template <class ElementD, int kBlockM, int kBlockN, int kClusterN>
void run_wave_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  launch_wave_mm<ElementD, kBlockM, kBlockN, kClusterN, false>(p.a, p.b, p.k, p.lda, p.ldb,
                                                               scaled_output(p), {}, stream);
}

template <class ElementD, int kBlockM, int kClusterN>
void run_block_wave_mm(const BlockScaledMmArgs& p, cudaStream_t stream) {
  ScaledOutput out{};
  out.out = p.out;
  out.m = static_cast<int>(p.m);
  out.n = static_cast<int>(p.n);
  launch_wave_mm<ElementD, kBlockM, 128, kClusterN, true>(
      p.a, p.b, p.k, p.lda, p.ldb, out, {p.scale_a, p.scale_b, p.scale_a_ld, p.scale_b_ld},
      stream);
}

#define CUSTOM_FP8_INSTANTIATE(name)                                                \
  template void run_wave_mm<cutlass::bfloat16_t, configs::name::kBlockM,            \
                            configs::name::kBlockN, configs::name::kClusterN>(      \
      const ScaledMmArgs&, cudaStream_t);                                           \
  template void run_wave_mm<cutlass::half_t, configs::name::kBlockM,                \
                            configs::name::kBlockN, configs::name::kClusterN>(      \
      const ScaledMmArgs&, cudaStream_t);
CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(CUSTOM_FP8_INSTANTIATE)
#undef CUSTOM_FP8_INSTANTIATE
#define CUSTOM_FP8_INSTANTIATE(ElementD)                                                   \
  template void run_block_wave_mm<ElementD, 256, 1>(const BlockScaledMmArgs&, cudaStream_t); \
  template void run_block_wave_mm<ElementD, 128, 1>(const BlockScaledMmArgs&, cudaStream_t); \
  template void run_block_wave_mm<ElementD, 256, 2>(const BlockScaledMmArgs&, cudaStream_t); \
  template void run_block_wave_mm<ElementD, 128, 2>(const BlockScaledMmArgs&, cudaStream_t);
CUSTOM_FP8_INSTANTIATE(cutlass::bfloat16_t)
CUSTOM_FP8_INSTANTIATE(cutlass::half_t)
#undef CUSTOM_FP8_INSTANTIATE

}  // namespace custom_fp8::sm90
