// How the split-K decode GEMM (splitk_mm_sm90.cu) splits K for a shape:
// decided in scaled_mm_dispatch.cu with the rest of the dispatch, which knows
// the device. Free of CUTLASS headers.
#pragma once

#include <cstdint>

namespace custom_fp8::sm90 {

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// CTAs per cluster (1 to max_splits) sharing one weight tile along K, for
// `ctas` tiles x token groups of `k_blocks` k-blocks each.
int choose_splitk_splits(int64_t ctas, int64_t k_blocks, int max_splits);

}  // namespace custom_fp8::sm90
