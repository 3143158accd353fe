// Argument checks of the CUDA entry points. They mirror
// vllm/custom_fp8/_checks.py (same rules, same wording), so a bad call fails
// the same way whether it enters through Python or straight through
// torch.ops._custom_fp8.
#pragma once

#include <optional>

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

inline QuantShape check_quant(const char* op, const Tensor& out, const Tensor& input) {
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
  check_same_device(op, "out", out, device);
  check_dtype(op, "out", out, ScalarType::Float8_e4m3fn);
  CF8_CHECK(out.dim() == 2, op, "out", "2-D", shape_str(out));
  check_contiguous(op, "out", out);
  CF8_CHECK(out.size(1) == input.size(1) && out.size(0) >= input.size(0), op, "out",
            "of shape [>= rows of input, hidden size of input] (padding rows allowed)",
            shape_str(out));
  return {device, input.size(0), out.size(0), input.size(1)};
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
