// Host side of the split-K decode GEMM (device code: splitk_mm_sm90.cuh): the
// TMA descriptors and the launch (a cluster of S CTAs along K, S from
// choose_splitk_splits; PDL).
#include <algorithm>

#include "own_gemm_dispatch_sm90.h"
#include "own_gemm_sm90.h"
#include "scaled_mm_sm90.h"
#include "splitk_mm_sm90.cuh"
#include "torch_utils.h"

namespace custom_fp8::sm90 {

static_assert(splitk::kBlockK == kTmaBoxK, "a k-block is one TMA box");

template <class ElementD, int kTokens>
void run_splitk_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  const int64_t tiles = cdiv(p.n, splitk::kRows), groups = cdiv(p.m, kTokens);
  const int64_t k_blocks = cdiv(p.k, splitk::kBlockK);
  const int splits = choose_splitk_splits(tiles * groups, k_blocks, splitk::kMaxSplits);
  const int64_t per_split = cdiv(k_blocks, splits);
  // Weight k-blocks prefetched into L2 under PDL, past the ones each CTA
  // loads into shared memory first: at most 16 MB over all CTAs (a third of
  // the H100's L2), so the prefetch does not evict itself.
  const int64_t ctas = tiles * groups * splits;
  const int64_t prefetch = std::clamp<int64_t>(
      (16 << 20) / (ctas * splitk::kRows * splitk::kBlockK)
          - splitk::kStages<kTokens> * splitk::kBlocksPerStage, 0, per_split);

  const splitk::Params params{scaled_output(p), static_cast<int>(k_blocks),
                              static_cast<int>(per_split), static_cast<int>(prefetch)};
  const CUtensorMap weight_map = k_major_tensor_map(p.b, p.n, p.k, p.ldb, splitk::kRows);
  const CUtensorMap act_map = k_major_tensor_map(p.a, p.m, p.k, p.lda, kTokens);

  launch_own_gemm("split-K", &splitk::splitk_mm_kernel<ElementD, kTokens>,
                  dim3(static_cast<unsigned>(tiles * splits), static_cast<unsigned>(groups), 1),
                  splitk::kThreads, splitk::kSmemBytes<kTokens>, splits, stream, weight_map,
                  act_map, params);
}

#define CUSTOM_FP8_INSTANTIATE(name)                                                          \
  template void run_splitk_mm<cutlass::bfloat16_t, configs::name::kTokens>(const ScaledMmArgs&, \
                                                                           cudaStream_t);       \
  template void run_splitk_mm<cutlass::half_t, configs::name::kTokens>(const ScaledMmArgs&,     \
                                                                       cudaStream_t);
CUSTOM_FP8_SCALED_MM_SPLITK_CONFIGS(CUSTOM_FP8_INSTANTIATE)
#undef CUSTOM_FP8_INSTANTIATE

}  // namespace custom_fp8::sm90
