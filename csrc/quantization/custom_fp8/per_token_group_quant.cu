// Dynamic per-token-group FP8 quant (1 x 128 groups), the activation side of
// the block-scaled GEMM:
//   scale = max(1e-10, amax(group)) / 448,
//   codes = RNE(fminf(fmaxf(x / scale, -448), 448))
// as upstream vLLM 0.25.1's per_token_group_fp8_quant (division, and this
// kernel's clamp order: NaN becomes -448). Scales go to `scale` with its own
// strides, so one kernel writes row-major and column-major (TMA-aligned)
// layouts. Padding rows get zero codes and the scale of an all-zero group.
//
// 16 threads per group, 8 elements per thread (one 8-byte store of codes);
// 16 groups per block of 256 threads.

#include "checks.h"
#include "ops.h"
#include "quant_utils.cuh"

namespace custom_fp8 {
namespace {

constexpr int kElemsPerThread = kGroupSize / kThreadsPerGroup;
constexpr int kThreads = 256;
constexpr int kGroupsPerBlock = kThreads / kThreadsPerGroup;

template <typename T, bool kAligned>
__global__ void per_token_group_quant_kernel(uint8_t* __restrict__ out,
                                             float* __restrict__ scales,
                                             const T* __restrict__ in, int64_t m,
                                             int64_t num_groups, int64_t groups_per_row,
                                             int64_t k, int64_t in_row_stride,
                                             int64_t scale_stride_row,
                                             int64_t scale_stride_group) {
  allow_dependent_launch();
  const int64_t group = static_cast<int64_t>(blockIdx.x) * kGroupsPerBlock +
                        threadIdx.x / kThreadsPerGroup;
  const int lane = threadIdx.x % kThreadsPerGroup;
  // Whole half-warps leave together, so the shuffles below stay complete.
  if (group >= num_groups) return;
  const int64_t row = group / groups_per_row, g = group % groups_per_row;
  const int64_t col = g * kGroupSize + lane * kElemsPerThread;
  float* scale_out = scales + row * scale_stride_row + g * scale_stride_group;

  float x[kElemsPerThread];
  if (row < m) {
    load_floats<T, kElemsPerThread, kAligned>(in + row * in_row_stride + col, x);
  } else {
#pragma unroll
    for (int i = 0; i < kElemsPerThread; ++i) x[i] = 0.0f;
  }
  float amax = kGroupEps;
#pragma unroll
  for (int i = 0; i < kElemsPerThread; ++i) amax = fmaxf(amax, fabsf(x[i]));
  const float scale = group_max(amax) / kFp8Max;
  if (lane == 0) *scale_out = scale;
#pragma unroll
  for (int i = 0; i < kElemsPerThread; ++i) x[i] = clamp_fp8_group(x[i] / scale);
  store_codes(out + row * k + col, x);
}

}  // namespace

void per_token_group_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                               int64_t group_size) {
  constexpr const char* op = "per_token_group_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  const int64_t groups_per_row = check_group_scale(op, input, scale, group_size, s);
  if (s.m_out == 0) return;

  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  const int64_t num_groups = s.m_out * groups_per_row;
  const dim3 grid(static_cast<unsigned>((num_groups + kGroupsPerBlock - 1) / kGroupsPerBlock));
  auto* out_ptr = static_cast<uint8_t*>(out.data_ptr());
  auto* scale_ptr = static_cast<float*>(scale.data_ptr());
  dispatch_activation(op, input.scalar_type(), [&]<typename T>() {
    auto* in_ptr = static_cast<const T*>(input.data_ptr());
    if (rows_vectorizable(input, s.k, sizeof(T))) {
      per_token_group_quant_kernel<T, true><<<grid, kThreads, 0, stream>>>(
          out_ptr, scale_ptr, in_ptr, s.m, num_groups, groups_per_row, s.k,
          input.stride(0), scale.stride(0), scale.stride(1));
    } else {
      per_token_group_quant_kernel<T, false><<<grid, kThreads, 0, stream>>>(
          out_ptr, scale_ptr, in_ptr, s.m, num_groups, groups_per_row, s.k,
          input.stride(0), scale.stride(0), scale.stride(1));
    }
  });
  check_launch(op);
}

}  // namespace custom_fp8
