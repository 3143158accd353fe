// float16-output instances of every sm_90a scaled GEMM configuration (one file
// per output dtype, so the two compile in parallel).
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

void scaled_mm_sm90_fp16(const ScaledMmArgs& p, int config, cudaStream_t stream) {
  run_config<cutlass::half_t>(p, config, stream);
}

}  // namespace custom_fp8::sm90
