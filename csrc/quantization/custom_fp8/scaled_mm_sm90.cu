// The sm_90a scaled GEMM's entry per output dtype: the runner table of every
// configuration (the kernels are compiled in scaled_mm_sm90_{swap,tile}_*.cu).
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

void scaled_mm_sm90_bf16(const ScaledMmArgs& p, int config, cudaStream_t stream) {
  run_config<cutlass::bfloat16_t>(p, config, stream);
}

void scaled_mm_sm90_fp16(const ScaledMmArgs& p, int config, cudaStream_t stream) {
  run_config<cutlass::half_t>(p, config, stream);
}

}  // namespace custom_fp8::sm90
