// Dynamic per-token FP8 quant: one scale per row,
//   scale = max(min(amax, scale_ub) / 448, 1 / (448 * 512)),
// codes = RNE(fmaxf(-448, fminf(x / scale, 448))). Upstream vLLM 0.25.1's
// dynamic_per_token_scaled_fp8_quant divides (it does not multiply by a
// reciprocal), so this kernel divides too: codes and scales match bit for bit.
// Padding rows get zero codes and the scale of an all-zero row.
//
// One block of 256 threads per row: pass 1 reduces the row's absmax, pass 2
// re-reads the row (from L1/L2) and writes 16 codes per thread per step.

#include "checks.h"
#include "ops.h"
#include "quant_utils.cuh"

namespace custom_fp8 {
namespace {

constexpr int kThreads = 256;

template <typename T, bool kAligned>
__global__ void per_token_quant_kernel(uint8_t* __restrict__ out, float* __restrict__ scales,
                                       const T* __restrict__ in,
                                       const float* __restrict__ scale_ub, int64_t m,
                                       int64_t k, int64_t in_row_stride) {
  allow_dependent_launch();
  const int64_t row = blockIdx.x;
  uint8_t* out_row = out + row * k;
  if (row >= m) {  // padding row: acts as an all-zero row
    for (int64_t c = threadIdx.x; c < k; c += kThreads) out_row[c] = 0;
    if (threadIdx.x == 0) scales[row] = kPerTokenMinScale;
    return;
  }
  const T* in_row = in + row * in_row_stride;

  float amax = 0.0f;
  if (kAligned) {
    for (int64_t c = threadIdx.x * kVecSize; c < k; c += kThreads * kVecSize) {
      float x[kVecSize];
      load_floats<T, kVecSize, true>(in_row + c, x);
#pragma unroll
      for (int i = 0; i < kVecSize; ++i) amax = fmaxf(amax, fabsf(x[i]));
    }
  } else {
    for (int64_t c = threadIdx.x; c < k; c += kThreads)
      amax = fmaxf(amax, fabsf(static_cast<float>(in_row[c])));
  }
  const float scale = per_token_scale(block_max(amax), scale_ub);
  if (threadIdx.x == 0) scales[row] = scale;

  if (kAligned) {
    for (int64_t c = threadIdx.x * kVecSize; c < k; c += kThreads * kVecSize) {
      float y[kVecSize];
      load_floats<T, kVecSize, true>(in_row + c, y);
#pragma unroll
      for (int i = 0; i < kVecSize; ++i) y[i] = clamp_fp8(y[i] / scale);
      store_codes(out_row + c, y);
    }
  } else {
    for (int64_t c = threadIdx.x; c < k; c += kThreads)
      out_row[c] = cvt_fp8(clamp_fp8(static_cast<float>(in_row[c]) / scale));
  }
}

}  // namespace

void dynamic_per_token_scaled_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                        const std::optional<Tensor>& scale_ub) {
  constexpr const char* op = "dynamic_per_token_scaled_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_per_token_scale(op, scale, scale_ub, s);
  if (s.m_out == 0) return;

  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  auto* out_ptr = static_cast<uint8_t*>(out.data_ptr());
  auto* scale_ptr = static_cast<float*>(scale.data_ptr());
  const float* ub_ptr =
      scale_ub.has_value() ? static_cast<const float*>(scale_ub->data_ptr()) : nullptr;
  dispatch_activation(op, input.scalar_type(), [&]<typename T>() {
    auto* in_ptr = static_cast<const T*>(input.data_ptr());
    const dim3 grid(static_cast<unsigned>(s.m_out));
    if (rows_vectorizable(input, s.k, sizeof(T))) {
      per_token_quant_kernel<T, true><<<grid, kThreads, 0, stream>>>(
          out_ptr, scale_ptr, in_ptr, ub_ptr, s.m, s.k, input.stride(0));
    } else {
      per_token_quant_kernel<T, false><<<grid, kThreads, 0, stream>>>(
          out_ptr, scale_ptr, in_ptr, ub_ptr, s.m, s.k, input.stride(0));
    }
  });
  check_launch(op);
}

}  // namespace custom_fp8
