// Device helpers shared by the quant kernels: vector loads, the FP8 conversion
// rules of upstream vLLM 0.25.1 (docs/numerics.md), block reductions and the
// input-dtype dispatch.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <cstdint>

#include "torch_utils.h"

namespace custom_fp8 {

constexpr float kFp8Max = 448.0f;
// Elements per thread in the row kernels: one 16-byte FP8 store.
constexpr int kVecSize = 16;

// float -> e4m3 code. Callers clamp first, so SATFINITE never triggers; the
// rounding is the hardware's round-to-nearest-even, as in upstream.
__device__ __forceinline__ uint16_t cvt_fp8x2(float lo, float hi) {
  return __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}

__device__ __forceinline__ uint8_t cvt_fp8(float x) {
  return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}

// Upstream's per-tensor and per-token clamp: fmaxf(-448, fminf(x, 448)).
// fminf returns 448 for NaN, so NaN becomes +448.
__device__ __forceinline__ float clamp_fp8(float x) {
  return fmaxf(-kFp8Max, fminf(x, kFp8Max));
}

// Upstream's per-token-group clamp: fminf(fmaxf(x, -448), 448): NaN -> -448.
__device__ __forceinline__ float clamp_fp8_group(float x) {
  return fminf(fmaxf(x, -kFp8Max), kFp8Max);
}

// N consecutive elements of a row as floats; kAligned: one or more 16-byte
// loads (the caller guarantees the alignment), else element by element.
template <typename T, int N, bool kAligned>
__device__ __forceinline__ void load_floats(const T* __restrict__ p, float (&x)[N]) {
  if constexpr (kAligned) {
    struct alignas(16) Chunk { T v[N]; };
    static_assert(sizeof(Chunk) % 16 == 0, "vector loads must be 16-byte multiples");
    Chunk c = *reinterpret_cast<const Chunk*>(p);
#pragma unroll
    for (int i = 0; i < N; ++i) x[i] = static_cast<float>(c.v[i]);
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) x[i] = static_cast<float>(p[i]);
  }
}

// Stores N (8 or 16) codes with one 8- or 16-byte store.
template <int N>
__device__ __forceinline__ void store_codes(uint8_t* __restrict__ p, const float (&y)[N]) {
  static_assert(N == 8 || N == 16, "store_codes takes 8 or 16 codes");
  uint16_t pairs[N / 2];
#pragma unroll
  for (int i = 0; i < N / 2; ++i) pairs[i] = cvt_fp8x2(y[2 * i], y[2 * i + 1]);
  if constexpr (N == 16) {
    *reinterpret_cast<uint4*>(p) = *reinterpret_cast<const uint4*>(pairs);
  } else {
    *reinterpret_cast<uint2*>(p) = *reinterpret_cast<const uint2*>(pairs);
  }
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, offset));
  return v;
}

// Max over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. Inputs are never NaN (the callers start from 0 or
// eps and fold |x| in with fmaxf, which ignores NaN, as upstream does).
__device__ __forceinline__ float block_max(float v) {
  __shared__ float warp_results[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_max(v);
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  const int num_warps = blockDim.x / 32;
  v = lane < num_warps ? warp_results[lane] : 0.0f;
  v = warp_max(v);
  __syncthreads();  // warp_results may be reused by a following call
  return v;
}

// Non-negative floats order like their bit patterns.
__device__ __forceinline__ void atomic_max_nonneg(float* addr, float v) {
  atomicMax(reinterpret_cast<int*>(addr), __float_as_int(v));
}

// True when every row of `input` starts 16-byte aligned and K % 16 == 0, so
// the kernels may use 16-byte vector loads (else they go element by element).
inline bool rows_vectorizable(const Tensor& input, int64_t k, size_t elem_size) {
  return k % kVecSize == 0 && aligned16(input) &&
         (input.stride(0) * static_cast<int64_t>(elem_size)) % 16 == 0;
}

// Calls fn.template operator()<T>() with T the CUDA type of `input`'s dtype.
template <typename Fn>
void dispatch_activation(const char* op, ScalarType dtype, Fn&& fn) {
  switch (dtype) {
    case ScalarType::BFloat16: fn.template operator()<__nv_bfloat16>(); break;
    case ScalarType::Half: fn.template operator()<__half>(); break;
    case ScalarType::Float: fn.template operator()<float>(); break;
    default:
      STD_TORCH_CHECK(false, "custom_fp8.", op,
                      ": 'input' must be torch.bfloat16 or torch.float16 or "
                      "torch.float32, got ", dtype_name(dtype));
  }
}

}  // namespace custom_fp8
