// What our own GEMMs (splitk_mm_sm90.cu, wave_mm_sm90.cu) ask of the device
// at launch: how the split-K GEMM splits K for a shape, and the SM count the
// wave GEMM's persistent grid fills. Decided in scaled_mm_dispatch.cu with the
// rest of the dispatch, which reads the device once. Free of CUTLASS headers.
#pragma once

#include <cstdint>

namespace custom_fp8::sm90 {

inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// CTAs per cluster (1 to max_splits) sharing one weight tile along K, for
// `ctas` tiles x token groups of `k_blocks` k-blocks each.
int choose_splitk_splits(int64_t ctas, int64_t k_blocks, int max_splits);

// The current device's SM count.
int64_t device_sms();

}  // namespace custom_fp8::sm90
