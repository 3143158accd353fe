// Host side of the wave GEMM (device code: wave_mm_sm90.cuh): the TMA
// descriptors and the launch, with PDL: one CTA per 256 x kBlockN tile of
// out, M fastest, so the CTAs that run together share a few weight tiles
// (read once from HBM) across all the activation rows (M x K, which L2 holds
// up to ~40 MB: M = 8192 at K = 4096).
#include "own_gemm_sm90.h"
#include "scaled_mm_sm90.h"
#include "splitk_dispatch_sm90.h"
#include "torch_utils.h"
#include "wave_mm_sm90.cuh"

namespace custom_fp8::sm90 {

static_assert(wave::kBlockK == kTmaBoxK, "a k-block is one TMA box");

template <class ElementD, int kBlockN>
void run_wave_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  const wave::Params params{scaled_output(p), static_cast<int>(cdiv(p.k, wave::kBlockK))};
  const CUtensorMap a_map = k_major_tensor_map(p.a, p.m, p.k, p.lda, wave::kBlockM);
  const CUtensorMap b_map = k_major_tensor_map(p.b, p.n, p.k, p.ldb, kBlockN);

  launch_own_gemm("wave GEMM", &wave::wave_mm_kernel<ElementD, kBlockN>,
                  dim3(static_cast<unsigned>(cdiv(p.m, wave::kBlockM)),
                       static_cast<unsigned>(cdiv(p.n, kBlockN)), 1),
                  wave::kThreads, wave::kSmemBytes<kBlockN>, /*cluster=*/0, stream, a_map, b_map,
                  params);
}

#define CUSTOM_FP8_INSTANTIATE(name)                                                          \
  template void run_wave_mm<cutlass::bfloat16_t, configs::name::kBlockN>(const ScaledMmArgs&, \
                                                                         cudaStream_t);       \
  template void run_wave_mm<cutlass::half_t, configs::name::kBlockN>(const ScaledMmArgs&,     \
                                                                     cudaStream_t);
CUSTOM_FP8_SCALED_MM_WAVE_CONFIGS(CUSTOM_FP8_INSTANTIATE)
#undef CUSTOM_FP8_INSTANTIATE

}  // namespace custom_fp8::sm90
