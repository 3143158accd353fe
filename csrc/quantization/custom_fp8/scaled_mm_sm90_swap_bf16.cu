// The bfloat16-output kernels of the swap_* scaled GEMM configurations.
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

#define CUSTOM_FP8_INSTANTIATE(name) template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::bfloat16_t);
CUSTOM_FP8_SCALED_MM_SWAP_CONFIGS(CUSTOM_FP8_INSTANTIATE)

}  // namespace custom_fp8::sm90
