// The float16-output kernels of the *_streamk scaled GEMM configurations.
// Built without PDL: with CUTLASS_ENABLE_GDC_FOR_SM90 the persistent kernel
// calls PersistentTileSchedulerSm90StreamK::is_last_tile, which does not
// compile in CUTLASS 4.2.0 (a const member passed by non-const reference).
// Without the define the kernels do not wait on the previous grid, so
// run_scaled_mm launches them without PDL.
#undef CUTLASS_ENABLE_GDC_FOR_SM90
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

#define CUSTOM_FP8_INSTANTIATE(name) template CUSTOM_FP8_SCALED_MM_RUNNER(name, cutlass::half_t);
CUSTOM_FP8_SCALED_MM_STREAMK_CONFIGS(CUSTOM_FP8_INSTANTIATE)

}  // namespace custom_fp8::sm90
