// What the epilogues of our own GEMMs (the split-K and the wave GEMM) write:
// out[m, n] = scale_a * (scale_b * acc) + bias, in float32 and rounded once
// to the output dtype, as the CUTLASS configurations' epilogue visitor tree
// (scaled_mm_sm90.cuh) computes it.
#pragma once

#include <cstdint>

#include "scaled_mm_sm90.h"

namespace custom_fp8::sm90 {

struct ScaledOutput {
  const float* scale_a;  // 1 or M values
  const float* scale_b;  // 1 or N values
  const void* bias;      // N values of the output dtype, or nullptr
  void* out;             // [M, N], contiguous
  int m, n;
  bool scale_a_per_token, scale_b_per_channel;

  __device__ __forceinline__ float scale_a_of(int row) const {
    return scale_a[scale_a_per_token ? row : 0];
  }
  __device__ __forceinline__ float scale_b_of(int col) const {
    return scale_b[scale_b_per_channel ? col : 0];
  }
  template <class ElementD>
  __device__ __forceinline__ float bias_of(int col) const {
    return bias ? float(static_cast<const ElementD*>(bias)[col]) : 0.f;
  }
  template <class ElementD>
  __device__ __forceinline__ ElementD* at(int row, int col) const {
    return static_cast<ElementD*>(out) + int64_t(row) * n + col;
  }
};

// The output part of one call's operands (host side, at launch).
inline ScaledOutput scaled_output(const ScaledMmArgs& p) {
  return {p.scale_a, p.scale_b, p.bias, p.out, static_cast<int>(p.m), static_cast<int>(p.n),
          p.scale_a_per_token, p.scale_b_per_channel};
}

}  // namespace custom_fp8::sm90
