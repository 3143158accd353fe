// Host side of the wave GEMM (device code: wave_mm_sm90.cuh): the TMA
// descriptors, the tile order and the persistent launch, with PDL: one CTA
// per SM (at most one per tile), walking the tiles in bands of activation
// rows that L2 keeps (~24 MB: 256 rows at K = 4096 are 1 MB), so each band's
// activations are read once from HBM and each weight tile once per band.
#include <algorithm>

#include "own_gemm_dispatch_sm90.h"
#include "own_gemm_sm90.h"
#include "scaled_mm_sm90.h"
#include "torch_utils.h"
#include "wave_mm_sm90.cuh"

namespace custom_fp8::sm90 {

static_assert(wave::kBlockK == kTmaBoxK, "a k-block is one TMA box");

template <class ElementD, int kBlockM, int kBlockN>
void run_wave_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  constexpr int64_t kBandBytes = 24 << 20;
  const int64_t m_tiles = cdiv(p.m, kBlockM), n_tiles = cdiv(p.n, kBlockN);
  const int64_t group_m = std::clamp<int64_t>(kBandBytes / (kBlockM * p.k), 1, m_tiles);
  const wave::Params params{scaled_output(p), static_cast<int>(cdiv(p.k, wave::kBlockK)),
                            static_cast<int>(m_tiles), static_cast<int>(n_tiles),
                            static_cast<int>(group_m)};
  const CUtensorMap a_map = k_major_tensor_map(p.a, p.m, p.k, p.lda, kBlockM);
  const CUtensorMap b_map = k_major_tensor_map(p.b, p.n, p.k, p.ldb, kBlockN);

  const auto ctas = static_cast<unsigned>(std::min(m_tiles * n_tiles, device_sms()));
  launch_own_gemm("wave GEMM", &wave::wave_mm_kernel<ElementD, kBlockM, kBlockN>, dim3(ctas),
                  wave::kThreads, wave::kSmemBytes<kBlockM, kBlockN>, /*cluster=*/0, stream, a_map,
                  b_map, params);
}

#define CUSTOM_FP8_INSTANTIATE(name)                                                   \
  template void run_wave_mm<cutlass::bfloat16_t, configs::name::kBlockM,               \
                            configs::name::kBlockN>(const ScaledMmArgs&, cudaStream_t); \
  template void run_wave_mm<cutlass::half_t, configs::name::kBlockM,                   \
                            configs::name::kBlockN>(const ScaledMmArgs&, cudaStream_t);
CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(CUSTOM_FP8_INSTANTIATE)
#undef CUSTOM_FP8_INSTANTIATE

}  // namespace custom_fp8::sm90
