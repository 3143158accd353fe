// Registers the CUDA implementations of the `_custom_fp8` ops. The schemas
// and fake impls are defined in Python (vllm/custom_fp8/_library.py), which
// loads this library after defining them; the same binary serves torch 2.11
// and later through the stable ABI (TORCH_TARGET_VERSION, CMakeLists.txt).
#include <torch/csrc/stable/library.h>

#include "block_scaled_mm_sm90.h"
#include "ops.h"
#include "scaled_mm_sm90.h"

STABLE_TORCH_LIBRARY_IMPL(_custom_fp8, CUDA, m) {
  m.impl("static_scaled_fp8_quant", TORCH_BOX(&custom_fp8::static_scaled_fp8_quant));
  m.impl("dynamic_scaled_fp8_quant", TORCH_BOX(&custom_fp8::dynamic_scaled_fp8_quant));
  m.impl("dynamic_per_token_scaled_fp8_quant",
         TORCH_BOX(&custom_fp8::dynamic_per_token_scaled_fp8_quant));
  m.impl("per_token_group_fp8_quant", TORCH_BOX(&custom_fp8::per_token_group_fp8_quant));
  m.impl("rms_norm_static_fp8_quant", TORCH_BOX(&custom_fp8::rms_norm_static_fp8_quant));
  m.impl("rms_norm_dynamic_per_token_fp8_quant",
         TORCH_BOX(&custom_fp8::rms_norm_dynamic_per_token_fp8_quant));
  m.impl("rms_norm_per_token_group_fp8_quant",
         TORCH_BOX(&custom_fp8::rms_norm_per_token_group_fp8_quant));
  m.impl("silu_and_mul_static_fp8_quant",
         TORCH_BOX(&custom_fp8::silu_and_mul_static_fp8_quant));
  m.impl("silu_and_mul_dynamic_per_token_fp8_quant",
         TORCH_BOX(&custom_fp8::silu_and_mul_dynamic_per_token_fp8_quant));
  m.impl("silu_and_mul_per_token_group_fp8_quant",
         TORCH_BOX(&custom_fp8::silu_and_mul_per_token_group_fp8_quant));
  m.impl("scaled_mm", TORCH_BOX(&custom_fp8::scaled_mm));
  m.impl("block_scaled_mm", TORCH_BOX(&custom_fp8::block_scaled_mm));
}

// What this binary was built from, readable from the file without loading it
// (tests/test_build.py, the wheel check): the source hash and the archs.
extern "C" __attribute__((used, visibility("default"))) const char custom_fp8_build_info[] =
    "CUSTOM_FP8_BUILD_INFO:source_hash=" CUSTOM_FP8_SOURCE_HASH
    ";cuda_archs=" CUSTOM_FP8_CUDA_ARCHS ";scaled_mm_configs=" CUSTOM_FP8_SCALED_MM_CONFIG_LIST
    ";block_scaled_mm_configs=" CUSTOM_FP8_BLOCK_SCALED_MM_CONFIG_LIST ";";
