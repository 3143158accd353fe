// bfloat16-output instances of the sm_90a scaled GEMM (one file per output
// dtype, so the two compile in parallel).
#include "scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

void scaled_mm_sm90_bf16(const ScaledMmArgs& p, cudaStream_t stream) {
  dispatch_scaled_mm<cutlass::bfloat16_t>(p, stream);
}

}  // namespace custom_fp8::sm90
