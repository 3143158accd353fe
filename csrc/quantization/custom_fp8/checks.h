// Argument checks of the CUDA entry points. They mirror
// vllm/custom_fp8/_checks.py (same rules, same wording), so a bad call fails
// the same way whether it enters through Python or straight through
// torch.ops._custom_fp8.
#pragma once

#include <optional>

#include "quant_utils.cuh"
#include "torch_utils.h"

namespace custom_fp8 {

struct QuantShape {
  int32_t device;
  int64_t m;      // rows of input
  int64_t m_out;  // rows of out (>= m; the extra rows are padding)
  int64_t k;      // hidden size
};

inline void check_dtype(const char* op, const char* arg, const Tensor& t,
                        ScalarType expected) {
  CF8_CHECK(t.scalar_type() == expected, op, arg, dtype_name(expected),
            dtype_name(t.scalar_type()));
}

inline void check_contiguous(const char* op, const char* arg, const Tensor& t) {
  CF8_CHECK(t.is_contiguous(), op, arg, "contiguous", strides_str(t));
}

inline void check_scalar_scale(const char* op, const char* arg, const Tensor& t,
                               int32_t device) {
  check_same_device(op, arg, t, device);
  check_dtype(op, arg, t, ScalarType::Float);
  CF8_CHECK(t.numel() == 1, op, arg, "a per-tensor scale with one element",
            shape_str(t));
}

// input [M, K] -> out [M' >= M, K]; gated (silu_and_mul): input [M, 2N] of
// gate and up halves -> out [M' >= M, N]. QuantShape.k is the width of out.
inline QuantShape check_quant(const char* op, const Tensor& out, const Tensor& input,
                              bool gated = false) {
  const int32_t device = check_device(op, input);
  CF8_CHECK(input.scalar_type() == ScalarType::BFloat16 ||
                input.scalar_type() == ScalarType::Half ||
                input.scalar_type() == ScalarType::Float,
            op, "input", "torch.bfloat16 or torch.float16 or torch.float32",
            dtype_name(input.scalar_type()));
  CF8_CHECK(input.dim() == 2, op, "input", "2-D", shape_str(input));
  CF8_CHECK(input.size(1) > 0, op, "input", "of a hidden size > 0", shape_str(input));
  CF8_CHECK(input.stride(1) == 1, op, "input", "contiguous in its last dimension",
            strides_str(input));
  if (gated) {
    CF8_CHECK(input.size(1) % 2 == 0, op, "input",
              "of an even hidden size (the gate and up halves)", shape_str(input));
  }
  const int64_t k = gated ? input.size(1) / 2 : input.size(1);
  check_same_device(op, "out", out, device);
  check_dtype(op, "out", out, ScalarType::Float8_e4m3fn);
  CF8_CHECK(out.dim() == 2, op, "out", "2-D", shape_str(out));
  check_contiguous(op, "out", out);
  CF8_CHECK(out.size(1) == k && out.size(0) >= input.size(0), op, "out",
            gated ? "of shape [>= rows of input, hidden size of input / 2] (padding rows allowed)"
                  : "of shape [>= rows of input, hidden size of input] (padding rows allowed)",
            shape_str(out));
  return {device, input.size(0), out.size(0), k};
}

// scale [M'] or [M', 1]: one float32 per row of out; scale_ub: one float32.
inline void check_per_token_scale(const char* op, const Tensor& scale,
                                  const std::optional<Tensor>& scale_ub, const QuantShape& s) {
  check_same_device(op, "scale", scale, s.device);
  check_dtype(op, "scale", scale, ScalarType::Float);
  check_contiguous(op, "scale", scale);
  CF8_CHECK(scale.numel() == s.m_out, op, "scale",
            "a per-token scale with one element per row of 'out'", shape_str(scale));
  if (scale_ub.has_value()) check_scalar_scale(op, "scale_ub", *scale_ub, s.device);
}

// scale [M', K / 128] float32, row- or column-major; returns K / 128.
inline int64_t check_group_scale(const char* op, const Tensor& input, const Tensor& scale,
                                 int64_t group_size, const QuantShape& s) {
  CF8_CHECK(group_size == kGroupSize, op, "group_size", "128", group_size);
  const bool gated = input.size(1) != s.k;
  CF8_CHECK(s.k % kGroupSize == 0, op, "input",
            gated ? "of a hidden size divisible by 2 * group_size=256 (gate and up halves)"
                  : "of a hidden size divisible by group_size=128",
            shape_str(input));
  check_same_device(op, "scale", scale, s.device);
  check_dtype(op, "scale", scale, ScalarType::Float);
  const int64_t groups_per_row = s.k / kGroupSize;
  CF8_CHECK(scale.dim() == 2 && scale.size(0) == s.m_out && scale.size(1) == groups_per_row,
            op, "scale", "of shape [rows of out, hidden size / 128]", shape_str(scale));
  const bool row_major = scale.stride(1) == 1 && scale.stride(0) >= groups_per_row;
  const bool col_major = scale.stride(0) == 1 && scale.stride(1) >= s.m_out;
  CF8_CHECK(s.m_out <= 1 || groups_per_row <= 1 || row_major || col_major, op, "scale",
            "row-major or column-major (TMA-aligned) strides", strides_str(scale));
  return groups_per_row;
}

// RMSNorm operands: weight [K] and residual [M, K] (contiguous), both of the
// input's dtype, as upstream's rms_norm and fused_add_rms_norm take them.
inline void check_rms_norm(const char* op, const Tensor& input, const Tensor& weight,
                           const std::optional<Tensor>& residual, const QuantShape& s) {
  check_same_device(op, "weight", weight, s.device);
  check_dtype(op, "weight", weight, input.scalar_type());
  CF8_CHECK(weight.dim() == 1 && weight.size(0) == s.k, op, "weight",
            "of shape [hidden size of input]", shape_str(weight));
  check_contiguous(op, "weight", weight);
  if (!residual.has_value()) return;
  check_same_device(op, "residual", *residual, s.device);
  check_dtype(op, "residual", *residual, input.scalar_type());
  CF8_CHECK(residual->dim() == 2 && residual->size(0) == s.m && residual->size(1) == s.k, op,
            "residual", "of the shape of input", shape_str(*residual));
  check_contiguous(op, "residual", *residual);
}

struct GemmShape {
  int32_t device;
  int64_t m, n, k;
};

inline GemmShape check_gemm(const char* op, const Tensor& out, const Tensor& a,
                            const Tensor& b) {
  const int32_t device = check_device(op, a);
  check_dtype(op, "a", a, ScalarType::Float8_e4m3fn);
  CF8_CHECK(a.dim() == 2, op, "a", "2-D", shape_str(a));
  check_same_device(op, "b", b, device);
  check_dtype(op, "b", b, ScalarType::Float8_e4m3fn);
  CF8_CHECK(b.dim() == 2, op, "b", "2-D", shape_str(b));
  const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
  CF8_CHECK(b.size(0) == k, op, "b",
            "of shape [K, N] (the transpose of a row-major [N, K] weight)", shape_str(b));
  CF8_CHECK(k % 16 == 0, op, "a", "of a K divisible by 16", "K=", k);
  CF8_CHECK(n % 16 == 0, op, "b", "of an N divisible by 16", "N=", n);
  CF8_CHECK(a.stride(1) == 1 && a.stride(0) % 16 == 0, op, "a",
            "row-major with a row stride divisible by 16", strides_str(a));
  CF8_CHECK(b.stride(0) == 1 && b.stride(1) % 16 == 0, op, "b",
            "column-major (b.t() row-major) with a column stride divisible by 16",
            strides_str(b));
  CF8_CHECK(aligned16(a), op, "a", "16-byte aligned", "an offset view");
  CF8_CHECK(aligned16(b), op, "b", "16-byte aligned", "an offset view");
  check_same_device(op, "out", out, device);
  CF8_CHECK(out.scalar_type() == ScalarType::BFloat16 ||
                out.scalar_type() == ScalarType::Half,
            op, "out", "torch.bfloat16 or torch.float16", dtype_name(out.scalar_type()));
  CF8_CHECK(out.dim() == 2 && out.size(0) == m && out.size(1) == n, op, "out",
            "of shape [M, N] = [rows of a, columns of b]", shape_str(out));
  check_contiguous(op, "out", out);
  CF8_CHECK(aligned16(out), op, "out", "16-byte aligned", "an offset view");
  return {device, m, n, k};
}

}  // namespace custom_fp8
