// The float16-output kernels of the *_streamk scaled GEMM configurations.
// Built without PDL, as scaled_mm_sm90_streamk_bf16.cu says.
#undef CUTLASS_ENABLE_GDC_FOR_SM90
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

#define CUSTOM_FP8_INSTANTIATE(name) template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::half_t);
CUSTOM_FP8_SCALED_MM_STREAMK_CONFIGS(CUSTOM_FP8_INSTANTIATE)

}  // namespace custom_fp8::sm90
