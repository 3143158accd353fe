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
// Per-token scales: min_scaling_factor<Float8_e4m3fn>, 1.0f / (448.0f * 512.0f)
// in float32, as upstream.
constexpr float kPerTokenMinScale = 1.0f / (kFp8Max * 512.0f);
// Per-token-group quant: 1 x 128 groups whose absmax starts at eps (upstream's
// default), reduced by 16 threads of 8 elements each.
constexpr int kGroupSize = 128;
constexpr int kThreadsPerGroup = 16;
constexpr float kGroupEps = 1e-10f;

// Called first by every kernel whose codes or scales a GEMM reads: the GEMM,
// launched with PDL (gemm_run_sm90.cuh), may start as soon as every block of
// this grid has called it. It still waits for this grid to finish before it
// reads anything; starting early overlaps its setup and its first weight
// loads with this kernel. Without a PDL-launched successor it does nothing.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// float -> e4m3 code. Callers clamp first, so SATFINITE never triggers; the
// rounding is the hardware's round-to-nearest-even, as in upstream.
__device__ __forceinline__ uint16_t cvt_fp8x2(float lo, float hi) {
  return __nv_cvt_float2_to_fp8x2(make_float2(lo, hi), __NV_SATFINITE, __NV_E4M3);
}

__device__ __forceinline__ uint8_t cvt_fp8(float x) {
  return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3);
}

// x rounded to T (nearest even) and back: where upstream's producer kernels
// (rms_norm, silu_and_mul) store T, the fused kernels round the same way.
template <typename T>
__device__ __forceinline__ float round_through(float x) {
  return static_cast<float>(static_cast<T>(x));
}

// Upstream's per-token scale of a row with absmax `amax`, clamped above by
// *scale_ub where given (fminf: a NaN bound leaves amax as it is).
__device__ __forceinline__ float per_token_scale(float amax, const float* scale_ub) {
  const float clamped = scale_ub != nullptr ? fminf(amax, *scale_ub) : amax;
  return fmaxf(clamped / kFp8Max, kPerTokenMinScale);
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

// Max over the 16 lanes of a group: an aligned half-warp, which is also the
// shuffle mask (the other half may have left already).
__device__ __forceinline__ float group_max(float v) {
  const unsigned mask = threadIdx.x % 32 < 16 ? 0x0000ffffu : 0xffff0000u;
#pragma unroll
  for (int offset = kThreadsPerGroup / 2; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(mask, v, offset));
  return v;
}

template <typename Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = op(v, __shfl_xor_sync(0xffffffff, v, offset));
  return v;
}

// op over the block (blockDim.x a multiple of 32, at most 1024) in a fixed
// butterfly-then-warp order, so results are the same run to run; every
// thread gets the result. `identity` fills the lanes past the last warp.
template <typename Op>
__device__ __forceinline__ float block_reduce(float v, Op op, float identity) {
  __shared__ float warp_results[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_reduce(v, op);
  if (lane == 0) warp_results[warp] = v;
  __syncthreads();
  const int num_warps = blockDim.x / 32;
  v = lane < num_warps ? warp_results[lane] : identity;
  v = warp_reduce(v, op);
  __syncthreads();  // warp_results may be reused by a following call
  return v;
}

// Max over the block. Inputs are never NaN (the callers start from 0 or eps
// and fold |x| in with fmaxf, which ignores NaN, as upstream does).
__device__ __forceinline__ float block_max(float v) {
  return block_reduce(v, [](float a, float b) { return fmaxf(a, b); }, 0.0f);
}

__device__ __forceinline__ float block_sum(float v) {
  return block_reduce(v, [](float a, float b) { return a + b; }, 0.0f);
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
