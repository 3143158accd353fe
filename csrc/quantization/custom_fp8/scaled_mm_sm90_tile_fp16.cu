// The float16-output kernels of the tile_* scaled GEMM configurations.
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

#define CUSTOM_FP8_INSTANTIATE(name) template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::half_t);
CUSTOM_FP8_SCALED_MM_TILE_CONFIGS(CUSTOM_FP8_INSTANTIATE)

}  // namespace custom_fp8::sm90
