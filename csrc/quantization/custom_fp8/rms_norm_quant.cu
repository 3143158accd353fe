// RMSNorm, optionally fused with the residual add, followed by FP8 quant in
// one kernel: the activation of qkv_proj and gate_up_proj straight from the
// hidden states. The producer's rounding points are those of the code
// Inductor generates for vLLM's native IR ops (vllm/ir/ops/layernorm.py): the
// RMSNorm vLLM 0.25.1 runs in compiled mode, where the fusion pass puts this
// kernel. Inductor keeps the intermediates in float32 (vLLM sets no
// emulate_precision_casts), so the cast to T between the norm and the weight
// disappears and y rounds once, as vLLM's CUDA rms_norm kernel does:
//   z        = input, or input + residual (float32; T(z) written back to residual)
//   inv_rms  = rsqrtf(sum(z * z) / K + epsilon)                  (float32)
//   y        = T((z * inv_rms) * weight)                         (one rounding to T)
// and y is quantized exactly as the standalone quant ops would quantize it
// (fused_quant.cuh). Only the order of the float32 sum may differ from
// another implementation; the reduction order here is fixed, so results are
// the same run to run.
//
// One block per input row (padding rows: fused_quant.cuh): pass 1 reduces
// sum(z * z); the quant passes read the row again (L1/L2) and recompute z and
// y. The residual is written on the last read of each chunk, by the thread
// that read it, so no thread ever reads a value already updated.

#include "fused_quant.cuh"
#include "ops.h"

namespace custom_fp8 {
namespace {

// Stores the floats z as T (round to nearest even) at columns [col, col + 8) below k.
template <typename T, bool kAligned>
__device__ __forceinline__ void store_values(T* __restrict__ row, int64_t col, int64_t k,
                                             const float (&z)[kChunk]) {
  if constexpr (kAligned) {
    struct alignas(16) Chunk { T v[kChunk]; };
    Chunk c;
#pragma unroll
    for (int i = 0; i < kChunk; ++i) c.v[i] = static_cast<T>(z[i]);
    *reinterpret_cast<Chunk*>(row + col) = c;
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i)
      if (col + i < k) row[col + i] = static_cast<T>(z[i]);
  }
}

template <typename T, ScaleMode kMode, bool kResidual, bool kAligned>
__global__ void __launch_bounds__(1024) rms_norm_quant_kernel(
    uint8_t* __restrict__ out, ScaleArgs sa, const T* __restrict__ input,
    T* __restrict__ residual, const T* __restrict__ weight, float epsilon, int64_t k,
    int64_t in_row_stride) {
  allow_dependent_launch();
  const int64_t row = blockIdx.x;
  uint8_t* out_row = out + row * k;
  const T* in_row = input + row * in_row_stride;
  T* res_row = kResidual ? residual + row * k : nullptr;

  // z: the row RMSNorm normalizes.
  auto load_z = [&](int64_t c, float (&z)[kChunk]) {
    load_chunk<T, kAligned>(in_row, c, k, z);
    if constexpr (kResidual) {
      float r[kChunk];
      load_chunk<T, kAligned>(res_row, c, k, r);
#pragma unroll
      for (int i = 0; i < kChunk; ++i) z[i] += r[i];
    }
  };

  float sum_sq = 0.0f;
  for (int64_t c = static_cast<int64_t>(threadIdx.x) * kChunk; c < k;
       c += static_cast<int64_t>(blockDim.x) * kChunk) {
    float z[kChunk];
    load_z(c, z);
#pragma unroll
    for (int i = 0; i < kChunk; ++i) sum_sq += z[i] * z[i];
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq) / static_cast<float>(k) + epsilon);

  quantize_row<kMode, kAligned>(
      out_row, row, k, sa, [&](int64_t c, float (&y)[kChunk], bool final_pass) {
        float z[kChunk], w[kChunk];
        load_z(c, z);
        load_chunk<T, kAligned>(weight, c, k, w);
        if (kResidual && final_pass) store_values<T, kAligned>(res_row, c, k, z);
#pragma unroll
        for (int i = 0; i < kChunk; ++i)
          y[i] = round_through<T>(z[i] * inv_rms * w[i]);
      });
}

template <ScaleMode kMode>
void launch_rms_norm_quant(const char* op, Tensor& out, const Tensor& input,
                           const Tensor& weight, const std::optional<Tensor>& residual,
                           const ScaleArgs& sa, double epsilon, const QuantShape& s) {
  launch_per_row<kMode>(op, input.scalar_type(), out, sa, s,
                        [&]<typename T>(dim3 grid, dim3 block, cudaStream_t stream) {
    auto* out_ptr = static_cast<uint8_t*>(out.data_ptr());
    auto* in_ptr = static_cast<const T*>(input.data_ptr());
    auto* weight_ptr = static_cast<const T*>(weight.data_ptr());
    T* res_ptr = residual.has_value() ? static_cast<T*>(residual->data_ptr()) : nullptr;
    const bool aligned = rows_vectorizable(input, s.k, sizeof(T)) && aligned16(weight) &&
                         aligned16(out) && (res_ptr == nullptr || aligned16(*residual));
    auto run = [&]<bool kResidual, bool kAligned>() {
      rms_norm_quant_kernel<T, kMode, kResidual, kAligned><<<grid, block, 0, stream>>>(
          out_ptr, sa, in_ptr, res_ptr, weight_ptr, static_cast<float>(epsilon), s.k,
          input.stride(0));
    };
    if (res_ptr != nullptr) {
      if (aligned) run.template operator()<true, true>();
      else run.template operator()<true, false>();
    } else {
      if (aligned) run.template operator()<false, true>();
      else run.template operator()<false, false>();
    }
  });
}

}  // namespace

void rms_norm_static_fp8_quant(Tensor& out, const Tensor& input, const Tensor& weight,
                               const Tensor& scale, double epsilon,
                               const std::optional<Tensor>& residual) {
  constexpr const char* op = "rms_norm_static_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_rms_norm(op, input, weight, residual, s);
  check_scalar_scale(op, "scale", scale, s.device);
  launch_rms_norm_quant<ScaleMode::kStatic>(op, out, input, weight, residual,
                                            static_scale_args(scale), epsilon, s);
}

void rms_norm_dynamic_per_token_fp8_quant(Tensor& out, const Tensor& input,
                                          const Tensor& weight, Tensor& scale, double epsilon,
                                          const std::optional<Tensor>& scale_ub,
                                          const std::optional<Tensor>& residual) {
  constexpr const char* op = "rms_norm_dynamic_per_token_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_rms_norm(op, input, weight, residual, s);
  check_per_token_scale(op, scale, scale_ub, s);
  launch_rms_norm_quant<ScaleMode::kPerToken>(op, out, input, weight, residual,
                                              per_token_scale_args(scale, scale_ub), epsilon, s);
}

void rms_norm_per_token_group_fp8_quant(Tensor& out, const Tensor& input, const Tensor& weight,
                                        Tensor& scale, double epsilon, int64_t group_size,
                                        const std::optional<Tensor>& residual) {
  constexpr const char* op = "rms_norm_per_token_group_fp8_quant";
  const QuantShape s = check_quant(op, out, input);
  check_rms_norm(op, input, weight, residual, s);
  check_group_scale(op, input, scale, group_size, s);
  launch_rms_norm_quant<ScaleMode::kGroup>(op, out, input, weight, residual,
                                           group_scale_args(scale), epsilon, s);
}

}  // namespace custom_fp8
