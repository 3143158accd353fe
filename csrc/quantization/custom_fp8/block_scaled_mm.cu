// Entry point of `_custom_fp8::block_scaled_mm`: argument checks, then the
// sm_90a block-scaled GEMM for the output dtype
// (block_scaled_mm_sm90_{bf16,fp16}.cu): `config` -1 for the dispatch's
// choice, else a configuration id. Free of CUTLASS headers.
#include "block_scaled_mm_sm90.h"
#include "checks.h"
#include "ops.h"

namespace custom_fp8 {

void block_scaled_mm(Tensor& out, const Tensor& a, const Tensor& b, const Tensor& scale_a,
                     const Tensor& scale_b, int64_t config) {
  constexpr const char* op = "block_scaled_mm";
  constexpr int64_t kBlock = 128;
  const GemmShape s = check_gemm(op, out, a, b);
  CF8_CHECK(s.k % kBlock == 0, op, "a", "of a K divisible by the block size 128", "K=", s.k);
  const int64_t k_blocks = s.k / kBlock, n_blocks = (s.n + kBlock - 1) / kBlock;

  check_same_device(op, "scale_a", scale_a, s.device);
  check_dtype(op, "scale_a", scale_a, ScalarType::Float);
  CF8_CHECK(scale_a.dim() == 2 && scale_a.size(0) == s.m && scale_a.size(1) == k_blocks, op,
            "scale_a", "of shape [M, K/128] (1x128 groups)", shape_str(scale_a));
  CF8_CHECK(s.m == 0 || (scale_a.stride(0) == 1 && scale_a.stride(1) >= s.m), op, "scale_a",
            "column-major (per_token_group_quant_fp8 with column_major_scales=True)",
            strides_str(scale_a));

  check_same_device(op, "scale_b", scale_b, s.device);
  check_dtype(op, "scale_b", scale_b, ScalarType::Float);
  CF8_CHECK(scale_b.dim() == 2 && scale_b.size(0) == k_blocks && scale_b.size(1) == n_blocks,
            op, "scale_b",
            "of shape [K/128, ceil(N/128)] (128x128 blocks, the transpose of "
            "weight_scale_inv)",
            shape_str(scale_b));
  CF8_CHECK((k_blocks == 1 || scale_b.stride(0) == 1) &&
                (n_blocks == 1 || scale_b.stride(1) == k_blocks),
            op,
            "scale_b", "the transpose of a contiguous [N/128, K/128] weight_scale_inv",
            strides_str(scale_b));
  CF8_CHECK(config >= -1 && config < sm90::kBlockScaledMmConfigs, op, "config",
            "-1 (dispatch) or a kernel configuration id below ", sm90::kBlockScaledMmConfigs,
            config);
  if (s.m == 0) return;

  const sm90::BlockScaledMmArgs args{
      a.data_ptr(),
      b.data_ptr(),
      static_cast<const float*>(scale_a.data_ptr()),
      static_cast<const float*>(scale_b.data_ptr()),
      out.data_ptr(),
      s.m, s.n, s.k, a.stride(0), b.stride(1), scale_a.stride(1), k_blocks,
  };
  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  if (out.scalar_type() == ScalarType::BFloat16) {
    sm90::block_scaled_mm_sm90_bf16(args, static_cast<int>(config), stream);
  } else {
    sm90::block_scaled_mm_sm90_fp16(args, static_cast<int>(config), stream);
  }
  check_launch(op);
}

}  // namespace custom_fp8
