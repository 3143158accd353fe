// Per-tensor FP8 quant: static (given scale) and dynamic (scale = amax / 448).
//
// Both multiply by the float32 reciprocal of the scale, clamp with
// fmaxf(-448, fminf(x, 448)) and round to nearest even: the codes of
// upstream vLLM 0.25.1's static/dynamic_scaled_fp8_quant, bit for bit.
// The dynamic scale has no lower clamp (an all-zero input gets scale 0 and
// codes 448, which dequantize to 0), as upstream.
//
// Grid: x = row (padding rows included), y = 16-element column chunks of
// 256 threads. Each thread converts 16 elements with one 16-byte store.

#include "checks.h"
#include "ops.h"
#include "quant_utils.cuh"

namespace custom_fp8 {
namespace {

constexpr int kThreads = 256;

// kAligned: every row of `in` starts 16-byte aligned and K % 16 == 0.
template <typename T, bool kAligned>
__global__ void per_tensor_quant_kernel(uint8_t* __restrict__ out, const T* __restrict__ in,
                                        const float* __restrict__ scale, int64_t m, int64_t k,
                                        int64_t in_row_stride) {
  allow_dependent_launch();
  const int64_t row = blockIdx.x;
  const int64_t col = (static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x) * kVecSize;
  if (col >= k) return;
  uint8_t* out_row = out + row * k;
  if (row >= m) {  // num_token_padding rows are zero-filled
    for (int64_t c = col; c < col + kVecSize && c < k; ++c) out_row[c] = 0;
    return;
  }
  const float inv_scale = 1.0f / *scale;
  const T* in_row = in + row * in_row_stride;
  if (kAligned) {
    float y[kVecSize];
    load_floats<T, kVecSize, true>(in_row + col, y);
#pragma unroll
    for (int i = 0; i < kVecSize; ++i) y[i] = clamp_fp8(y[i] * inv_scale);
    store_codes(out_row + col, y);
  } else {
    for (int64_t c = col; c < col + kVecSize && c < k; ++c)
      out_row[c] = cvt_fp8(clamp_fp8(static_cast<float>(in_row[c]) * inv_scale));
  }
}

// scale = max(scale, max|x| / 448) over the block's elements; *scale starts at 0.
template <typename T, bool kAligned>
__global__ void absmax_kernel(float* __restrict__ scale, const T* __restrict__ in, int64_t k,
                              int64_t in_row_stride) {
  const int64_t row = blockIdx.x;
  const int64_t col = (static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x) * kVecSize;
  const T* in_row = in + row * in_row_stride;
  float amax = 0.0f;
  if (col < k) {
    if (kAligned) {
      float x[kVecSize];
      load_floats<T, kVecSize, true>(in_row + col, x);
#pragma unroll
      for (int i = 0; i < kVecSize; ++i) amax = fmaxf(amax, fabsf(x[i]));
    } else {
      for (int64_t c = col; c < col + kVecSize && c < k; ++c)
        amax = fmaxf(amax, fabsf(static_cast<float>(in_row[c])));
    }
  }
  amax = block_max(amax);
  if (threadIdx.x == 0) atomic_max_nonneg(scale, amax / kFp8Max);
}

dim3 row_grid(int64_t rows, int64_t k) {
  return dim3(static_cast<unsigned>(rows),
              static_cast<unsigned>((k + kThreads * kVecSize - 1) / (kThreads * kVecSize)));
}

template <typename T>
void launch_quant(const Tensor& out, const Tensor& input, const float* scale,
                  const QuantShape& s, cudaStream_t stream) {
  auto* out_ptr = static_cast<uint8_t*>(out.data_ptr());
  auto* in_ptr = static_cast<const T*>(input.data_ptr());
  const dim3 grid = row_grid(s.m_out, s.k);
  if (rows_vectorizable(input, s.k, sizeof(T))) {
    per_tensor_quant_kernel<T, true><<<grid, kThreads, 0, stream>>>(
        out_ptr, in_ptr, scale, s.m, s.k, input.stride(0));
  } else {
    per_tensor_quant_kernel<T, false><<<grid, kThreads, 0, stream>>>(
        out_ptr, in_ptr, scale, s.m, s.k, input.stride(0));
  }
}

}  // namespace

void static_scaled_fp8_quant(Tensor& out, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "static_scaled_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_scalar_scale(op, "scale", scale, s.device);
  if (s.m_out == 0) return;
  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  dispatch_activation(op, input.scalar_type(), [&]<typename T>() {
    launch_quant<T>(out, input, static_cast<const float*>(scale.data_ptr()), s, stream);
  });
  check_launch(op);
}

void dynamic_scaled_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale) {
  constexpr const char* op = "dynamic_scaled_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_scalar_scale(op, "scale", scale, s.device);
  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  auto* scale_ptr = static_cast<float*>(scale.data_ptr());
  STD_TORCH_CHECK(cudaMemsetAsync(scale_ptr, 0, sizeof(float), stream) == cudaSuccess,
                  "custom_fp8.", op, ": cudaMemsetAsync failed");
  if (s.m_out == 0) return;
  dispatch_activation(op, input.scalar_type(), [&]<typename T>() {
    auto* in_ptr = static_cast<const T*>(input.data_ptr());
    if (s.m > 0) {
      const dim3 grid = row_grid(s.m, s.k);
      if (rows_vectorizable(input, s.k, sizeof(T))) {
        absmax_kernel<T, true><<<grid, kThreads, 0, stream>>>(scale_ptr, in_ptr, s.k,
                                                              input.stride(0));
      } else {
        absmax_kernel<T, false><<<grid, kThreads, 0, stream>>>(scale_ptr, in_ptr, s.k,
                                                               input.stride(0));
      }
    }
    launch_quant<T>(out, input, scale_ptr, s, stream);
  });
  check_launch(op);
}

}  // namespace custom_fp8
