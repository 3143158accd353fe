// Entry point of `_custom_fp8::scaled_mm`: argument checks, then the sm_90a
// CUTLASS GEMM for the output dtype (scaled_mm_sm90_{bf16,fp16}.cu). Free of
// CUTLASS headers, so the checks compile fast.
#include <torch/csrc/stable/ops.h>

#include "checks.h"
#include "ops.h"
#include "scaled_mm_sm90.h"

namespace custom_fp8 {

void scaled_mm(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& scale_a,
               const Tensor& scale_b, const std::optional<Tensor>& bias, int64_t config) {
  constexpr const char* op = "scaled_mm";
  const GemmShape s = check_gemm(op, out, a, b);

  check_same_device(op, "scale_a", scale_a, s.device);
  check_dtype(op, "scale_a", scale_a, ScalarType::Float);
  check_contiguous(op, "scale_a", scale_a);
  const bool per_token = scale_a.numel() == s.m && s.m != 1;
  CF8_CHECK((scale_a.numel() == 1 || scale_a.numel() == s.m) && scale_a.dim() <= 2 &&
                (scale_a.dim() < 2 || scale_a.size(1) == 1),
            op, "scale_a", "per-tensor (1 element) or per-token ([M, 1])", shape_str(scale_a));

  check_same_device(op, "scale_b", scale_b, s.device);
  check_dtype(op, "scale_b", scale_b, ScalarType::Float);
  check_contiguous(op, "scale_b", scale_b);
  CF8_CHECK((scale_b.numel() == 1 || scale_b.numel() == s.n) && scale_b.dim() <= 2, op,
            "scale_b", "per-tensor (1 element) or per-channel (N elements)", shape_str(scale_b));

  if (bias.has_value()) {
    check_same_device(op, "bias", *bias, s.device);
    check_dtype(op, "bias", *bias, out.scalar_type());
    check_contiguous(op, "bias", *bias);
    CF8_CHECK(bias->dim() == 1 && bias->size(0) == s.n, op, "bias", "of shape [N]",
              shape_str(*bias));
  }
  CF8_CHECK(config >= -2 && config < sm90::scaled_mm_num_configs(), op, "config",
            "-1 (dispatch), -2 (its analytic model) or a kernel configuration id below ",
            sm90::scaled_mm_num_configs(), config);
  if (s.m == 0) return;

  std::optional<Tensor> workspace;  // lives until the kernel is enqueued
  const sm90::ScaledMmArgs args{
      a.data_ptr(),
      b.data_ptr(),
      static_cast<const float*>(scale_a.data_ptr()),
      static_cast<const float*>(scale_b.data_ptr()),
      bias.has_value() ? bias->data_ptr() : nullptr,
      out.data_ptr(),
      s.m, s.n, s.k, a.stride(0), b.stride(1),
      per_token,
      scale_b.numel() == s.n,
      // Stream-K partial sums: from torch's caching allocator (stream-ordered,
      // CUDA-graph safe).
      [&](size_t bytes) {
        workspace = torch::stable::new_empty(out, {static_cast<int64_t>(bytes)}, ScalarType::Byte);
        return workspace->data_ptr();
      },
  };
  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  const int chosen = config >= 0 ? static_cast<int>(config)
                                 : sm90::choose_scaled_mm_config(s.m, s.n, s.k, config == -1);
  if (out.scalar_type() == ScalarType::BFloat16) {
    sm90::scaled_mm_sm90_bf16(args, chosen, stream);
  } else {
    sm90::scaled_mm_sm90_fp16(args, chosen, stream);
  }
  check_launch(op);
}

}  // namespace custom_fp8
