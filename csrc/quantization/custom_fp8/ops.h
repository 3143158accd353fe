// The CUDA entry points of the `_custom_fp8` ops. Schemas live in
// vllm/custom_fp8/_library.py; torch_binding.cpp registers these for the
// CUDA dispatch key. Every entry point checks its arguments (checks.h),
// returns at once for zero rows, and launches on the current stream.
#pragma once

#include <optional>

#include <torch/csrc/stable/tensor.h>

namespace custom_fp8 {

using torch::stable::Tensor;

// Quant: `out` [M', K] float8_e4m3fn with M' >= M rows of `input` [M, K];
// rows past M are zero-filled (num_token_padding).
void static_scaled_fp8_quant(Tensor& out, const Tensor& input, const Tensor& scale);
void dynamic_scaled_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale);
void dynamic_per_token_scaled_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                        const std::optional<Tensor>& scale_ub);
void per_token_group_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                               int64_t group_size);

// Fused producer + quant (docs/numerics.md, "Fused producers"): `out` as
// above, the scales as the matching standalone quant op writes them.
// RMSNorm of `input` [M, K] with `weight` [K]; with `residual` [M, K]:
// residual += input (rounded to the input dtype), then the norm of residual.
void rms_norm_static_fp8_quant(Tensor& out, const Tensor& input, const Tensor& weight,
                               const Tensor& scale, double epsilon,
                               const std::optional<Tensor>& residual);
void rms_norm_dynamic_per_token_fp8_quant(Tensor& out, const Tensor& input,
                                          const Tensor& weight, Tensor& scale, double epsilon,
                                          const std::optional<Tensor>& scale_ub,
                                          const std::optional<Tensor>& residual);
void rms_norm_per_token_group_fp8_quant(Tensor& out, const Tensor& input, const Tensor& weight,
                                        Tensor& scale, double epsilon, int64_t group_size,
                                        const std::optional<Tensor>& residual);
// silu(input[:, :N]) * input[:, N:] of `input` [M, 2N]; `out` [M', N].
void silu_and_mul_static_fp8_quant(Tensor& out, const Tensor& input, const Tensor& scale);
void silu_and_mul_dynamic_per_token_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                              const std::optional<Tensor>& scale_ub);
void silu_and_mul_per_token_group_fp8_quant(Tensor& out, const Tensor& input, Tensor& scale,
                                            int64_t group_size);

// out[M, N] = scale_a * (scale_b * (a[M, K] @ b[K, N])) + bias.
// config: -1 lets the dispatch choose; else a kernel configuration id
// (scaled_mm_sm90.h), for the tuner and the tests.
void scaled_mm(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& scale_a,
               const Tensor& scale_b, const std::optional<Tensor>& bias, int64_t config);

// out[M, N] = sum over 128-blocks k of scale_a[m, k] * scale_b[k, n/128] * (a @ b)_k.
// config: -1 lets the dispatch choose; else a kernel configuration id
// (block_scaled_mm_sm90.h), for the tests and the bench.
void block_scaled_mm(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& scale_a,
                     const Tensor& scale_b, int64_t config);

}  // namespace custom_fp8
