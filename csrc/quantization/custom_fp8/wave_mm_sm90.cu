// Host side of the wave GEMM (device code: wave_mm_sm90.cuh), per-token /
// per-channel scaled (scaled_mm) and block-scaled (block_scaled_mm): the TMA
// descriptors, the tile order and the persistent launch, with PDL: one CTA
// per SM (at most one per tile), walking the tiles in bands of activation
// rows that L2 keeps (~24 MB: 256 rows at K = 4096 are 1 MB), so each band's
// activations are read once from HBM and each weight tile once per band.
#include <algorithm>

#include "block_scaled_mm_sm90.h"
#include "own_gemm_dispatch_sm90.h"
#include "own_gemm_sm90.h"
#include "scaled_mm_sm90.h"
#include "torch_utils.h"
#include "wave_mm_sm90.cuh"

namespace custom_fp8::sm90 {

static_assert(wave::kBlockK == kTmaBoxK, "a k-block is one TMA box");

// Launches the wave GEMM on [M, K] x [N, K]^T (both K-major, row strides lda
// and ldb bytes) into `out`, with `block` scales when kBlockScaled.
template <class ElementD, int kBlockM, int kBlockN, bool kBlockScaled>
void launch_wave_mm(const void* a, const void* b, int64_t k, int64_t lda, int64_t ldb,
                    const ScaledOutput& out, const wave::BlockScales& block,
                    cudaStream_t stream) {
  constexpr int64_t kBandBytes = 24 << 20;
  const int64_t m_tiles = cdiv(out.m, kBlockM), n_tiles = cdiv(out.n, kBlockN);
  const int64_t group_m = std::clamp<int64_t>(kBandBytes / (kBlockM * k), 1, m_tiles);
  const wave::Params params{out,
                            block,
                            static_cast<int>(cdiv(k, wave::kBlockK)),
                            static_cast<int>(m_tiles),
                            static_cast<int>(n_tiles),
                            static_cast<int>(group_m)};
  const CUtensorMap a_map = k_major_tensor_map(a, out.m, k, lda, kBlockM);
  const CUtensorMap b_map = k_major_tensor_map(b, out.n, k, ldb, kBlockN);

  const auto ctas = static_cast<unsigned>(std::min(m_tiles * n_tiles, device_sms()));
  launch_own_gemm("wave GEMM", &wave::wave_mm_kernel<ElementD, kBlockM, kBlockN, kBlockScaled>,
                  dim3(ctas), wave::kThreads, wave::kSmemBytes<kBlockM, kBlockN>, /*cluster=*/0,
                  stream, a_map, b_map, params);
}

template <class ElementD, int kBlockM, int kBlockN>
void run_wave_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  launch_wave_mm<ElementD, kBlockM, kBlockN, false>(p.a, p.b, p.k, p.lda, p.ldb, scaled_output(p),
                                                    {}, stream);
}

template <class ElementD, int kBlockM>
void run_block_wave_mm(const BlockScaledMmArgs& p, cudaStream_t stream) {
  ScaledOutput out{};
  out.out = p.out;
  out.m = static_cast<int>(p.m);
  out.n = static_cast<int>(p.n);
  launch_wave_mm<ElementD, kBlockM, 128, true>(p.a, p.b, p.k, p.lda, p.ldb, out,
                                               {p.scale_a, p.scale_b, p.scale_a_ld, p.scale_b_ld},
                                               stream);
}

#define CUSTOM_FP8_INSTANTIATE(name)                                                   \
  template void run_wave_mm<cutlass::bfloat16_t, configs::name::kBlockM,               \
                            configs::name::kBlockN>(const ScaledMmArgs&, cudaStream_t); \
  template void run_wave_mm<cutlass::half_t, configs::name::kBlockM,                   \
                            configs::name::kBlockN>(const ScaledMmArgs&, cudaStream_t);
CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(CUSTOM_FP8_INSTANTIATE)
#undef CUSTOM_FP8_INSTANTIATE
template void run_block_wave_mm<cutlass::bfloat16_t, 256>(const BlockScaledMmArgs&, cudaStream_t);
template void run_block_wave_mm<cutlass::bfloat16_t, 128>(const BlockScaledMmArgs&, cudaStream_t);
template void run_block_wave_mm<cutlass::half_t, 256>(const BlockScaledMmArgs&, cudaStream_t);
template void run_block_wave_mm<cutlass::half_t, 128>(const BlockScaledMmArgs&, cudaStream_t);

}  // namespace custom_fp8::sm90
