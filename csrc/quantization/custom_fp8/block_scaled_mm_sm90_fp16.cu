// float16-output instances of the sm_90a block-scaled GEMM.
#include "block_scaled_mm_sm90_configs.cuh"

namespace custom_fp8::sm90 {

void block_scaled_mm_sm90_fp16(const BlockScaledMmArgs& p, int config, cudaStream_t stream) {
  dispatch_block_scaled_mm<cutlass::half_t>(p, config, stream);
}

}  // namespace custom_fp8::sm90
