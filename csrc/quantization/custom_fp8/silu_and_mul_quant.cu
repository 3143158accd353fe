// SiLU-and-mul followed by FP8 quant in one kernel: the activation of
// down_proj straight from gate_up_proj's output [M, 2N] (gate | up). The
// producer's rounding points are those of the code Inductor generates for
// vLLM's native SiluAndMul (F.silu(gate) * up), which compiled mode runs and
// the fusion pass replaces: the silu stays in float32 and y rounds once (the
// eager CUDA silu_and_mul rounds the silu to T first):
//   s = gate / (1 + expf(-gate))         (float32)
//   y = T(s * up)                        (float32 product, rounded to T)
// and y is quantized exactly as the standalone quant ops would quantize it
// (fused_quant.cuh). Elementwise only, so every backend gets the same y up to
// the accuracy of its expf (docs/numerics.md).
//
// One block per input row (padding rows: fused_quant.cuh); the per-token
// mode computes the row twice (absmax, then codes) rather than keeping it on
// chip.

#include "fused_quant.cuh"
#include "ops.h"

namespace custom_fp8 {
namespace {

template <typename T, ScaleMode kMode, bool kAligned>
__global__ void __launch_bounds__(1024) silu_and_mul_quant_kernel(
    uint8_t* __restrict__ out, ScaleArgs sa, const T* __restrict__ input, int64_t n,
    int64_t in_row_stride) {
  allow_dependent_launch();
  const int64_t row = blockIdx.x;
  uint8_t* out_row = out + row * n;
  const T* gate_row = input + row * in_row_stride;
  const T* up_row = gate_row + n;
  quantize_row<kMode, kAligned>(out_row, row, n, sa, [&](int64_t c, float (&y)[kChunk], bool) {
    float gate[kChunk], up[kChunk];
    load_chunk<T, kAligned>(gate_row, c, n, gate);
    load_chunk<T, kAligned>(up_row, c, n, up);
#pragma unroll
    for (int i = 0; i < kChunk; ++i) {
      const float silu = gate[i] / (1.0f + expf(-gate[i]));
      y[i] = round_through<T>(silu * up[i]);
    }
  });
}

template <ScaleMode kMode>
void launch_silu_and_mul_quant(const char* op, Tensor& out, const Tensor& input,
                               const ScaleArgs& sa, const QuantShape& s) {
  launch_per_row<kMode>(op, input.scalar_type(), out, sa, s,
                        [&]<typename T>(dim3 grid, dim3 block, cudaStream_t stream) {
    auto* out_ptr = static_cast<uint8_t*>(out.data_ptr());
    auto* in_ptr = static_cast<const T*>(input.data_ptr());
    // N % 16 == 0 keeps the up half 16-byte aligned too.
    if (rows_vectorizable(input, s.k, sizeof(T)) && aligned16(out)) {
      silu_and_mul_quant_kernel<T, kMode, true><<<grid, block, 0, stream>>>(
          out_ptr, sa, in_ptr, s.k, input.stride(0));
    } else {
      silu_and_mul_quant_kernel<T, kMode, false><<<grid, block, 0, stream>>>(
          out_ptr, sa, in_ptr, s.k, input.stride(0));
    }
  });
}

}  // namespace

void silu_and_mul_static_fp8_quant(Tensor& out, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "silu_and_mul_static_fp8_quant";
  const QuantShape s = check_quant(op, out, input, /*gated=*/true);
  check_scalar_scale(op, "scale", scale, s.device);
  launch_silu_and_mul_quant<ScaleMode::kStatic>(op, out, input, static_scale_args(scale), s);
}

void silu_and_mul_dynamic_per_token_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                              const std::optional<Tensor>& scale_ub) {
  constexpr const char* op = "silu_and_mul_dynamic_per_token_fp8_quant";
  const QuantShape s = check_quant(op, out, input, /*gated=*/true);
  check_per_token_scale(op, scale, scale_ub, s);
  launch_silu_and_mul_quant<ScaleMode::kPerToken>(op, out, input,
                                                  per_token_scale_args(scale, scale_ub), s);
}

void silu_and_mul_per_token_group_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                            int64_t group_size) {
  constexpr const char* op = "silu_and_mul_per_token_group_fp8_quant";
  const QuantShape s = check_quant(op, out, input, /*gated=*/true);
  check_group_scale(op, input, scale, group_size, s);
  launch_silu_and_mul_quant<ScaleMode::kGroup>(op, out, input, group_scale_args(scale), s);
}

}  // namespace custom_fp8
