// The quant half of the fused producer + FP8 quant kernels
// (rms_norm_quant.cu, silu_and_mul_quant.cu): one block per input row; the
// producer hands over the row 8 columns at a time, already rounded to the
// input dtype (docs/numerics.md, "Fused producers"), and the row is quantized
// with the rules of the standalone ops, bit for bit:
//   static      RNE(fmaxf(-448, fminf(y * (1 / scale), 448)))   (per_tensor_quant.cu)
//   per-token   scale from the row's absmax, RNE(clamp(y / s))    (per_token_quant.cu)
//   group       scale from each 128-group's absmax, its clamp     (per_token_group_quant.cu)
// The per-token mode needs the row's absmax before its first code: where
// each thread has at most kCachedChunks chunks (K <= 24576 at 1024 threads,
// every decode shape of the models) it keeps its values in registers and
// produces them once; a longer row is produced twice (absmax, then codes).
// Producing once matters at decode: one block computes a whole row, and
// SiLU's expf and division cost as much as the loads.
#pragma once

#include <algorithm>

#include "checks.h"
#include "quant_utils.cuh"

namespace custom_fp8 {

enum class ScaleMode { kStatic, kPerToken, kGroup };

// Columns per thread per step: one 16-byte load of bf16/fp16, one 8-byte
// store of codes, and 16 consecutive threads cover one 128-group.
constexpr int kChunk = kGroupSize / kThreadsPerGroup;
// Chunks per thread the per-token mode keeps in registers (24 floats).
constexpr int kCachedChunks = 3;

struct ScaleArgs {
  // per-token: [M'] (one per row); group: [M', K / 128] with the strides
  // below; static: null.
  float* scales;
  // static: the given scale; per-token: scale_ub or null; group: null.
  const float* given;
  int64_t row_stride;
  int64_t group_stride;
};

inline ScaleArgs static_scale_args(const Tensor& scale) {
  return {nullptr, static_cast<const float*>(scale.data_ptr()), 0, 0};
}

inline ScaleArgs per_token_scale_args(Tensor& scale, const std::optional<Tensor>& scale_ub) {
  return {static_cast<float*>(scale.data_ptr()),
          scale_ub.has_value() ? static_cast<const float*>(scale_ub->data_ptr()) : nullptr, 1,
          0};
}

inline ScaleArgs group_scale_args(Tensor& scale) {
  return {static_cast<float*>(scale.data_ptr()), nullptr, scale.stride(0), scale.stride(1)};
}

// Columns [col, col + 8) of a row as floats; kAligned: one 16-byte load
// (two for float32), else element by element with zeros past k.
template <typename T, bool kAligned>
__device__ __forceinline__ void load_chunk(const T* __restrict__ row, int64_t col, int64_t k,
                                           float (&x)[kChunk]) {
  if constexpr (kAligned) {
    load_floats<T, kChunk, true>(row + col, x);
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i)
      x[i] = col + i < k ? static_cast<float>(row[col + i]) : 0.0f;
  }
}

// Codes of clamped values y for columns [col, col + 8) below k.
template <bool kAligned>
__device__ __forceinline__ void store_chunk(uint8_t* __restrict__ out_row, int64_t col,
                                            int64_t k, const float (&y)[kChunk]) {
  if constexpr (kAligned) {
    store_codes(out_row + col, y);
  } else {
#pragma unroll
    for (int i = 0; i < kChunk; ++i)
      if (col + i < k) out_row[col + i] = cvt_fp8(y[i]);
  }
}

// Padding rows M..M'-1 of out (num_token_padding), one block each: zero
// codes and the scale of an all-zero row, as the standalone ops write them.
template <ScaleMode kMode>
__global__ void padding_rows_kernel(uint8_t* __restrict__ out, ScaleArgs sa, int64_t m,
                                    int64_t k) {
  allow_dependent_launch();
  const int64_t row = m + blockIdx.x;
  for (int64_t c = threadIdx.x; c < k; c += blockDim.x) out[row * k + c] = 0;
  if constexpr (kMode == ScaleMode::kPerToken) {
    if (threadIdx.x == 0) sa.scales[row * sa.row_stride] = kPerTokenMinScale;
  } else if constexpr (kMode == ScaleMode::kGroup) {
    for (int64_t g = threadIdx.x; g < k / kGroupSize; g += blockDim.x)
      sa.scales[row * sa.row_stride + g * sa.group_stride] = kGroupEps / kFp8Max;
  }
}

// Per-token mode: the row's scale from each thread's amax (a block
// reduction: every thread calls it), written by thread 0 and returned to all.
__device__ __forceinline__ float write_row_scale(float amax, int64_t row, const ScaleArgs& sa) {
  const float scale = per_token_scale(block_max(amax), sa.given);
  if (threadIdx.x == 0) sa.scales[row * sa.row_stride] = scale;
  return scale;
}

// Per-token mode: the codes of one chunk, y / scale, stored at column c.
template <bool kAligned>
__device__ __forceinline__ void store_codes(uint8_t* __restrict__ out_row, int64_t c, int64_t k,
                                            float (&y)[kChunk], float scale) {
#pragma unroll
  for (int i = 0; i < kChunk; ++i) y[i] = clamp_fp8(y[i] / scale);
  store_chunk<kAligned>(out_row, c, k, y);
}

// Quantizes row `row` of out [M', k]. produce(col, y, final_pass) writes the
// producer's values for columns [col, col + 8) (zeros past k); final_pass is
// true on the last read of each chunk, where a producer with a side output
// (the updated residual) writes it. Every thread of the block calls this.
template <ScaleMode kMode, bool kAligned, typename Produce>
__device__ __forceinline__ void quantize_row(uint8_t* __restrict__ out_row, int64_t row,
                                             int64_t k, const ScaleArgs& sa,
                                             Produce&& produce) {
  const int64_t first = static_cast<int64_t>(threadIdx.x) * kChunk;
  const int64_t step = static_cast<int64_t>(blockDim.x) * kChunk;
  float y[kChunk];
  if constexpr (kMode == ScaleMode::kStatic) {
    const float inv_scale = 1.0f / *sa.given;
    for (int64_t c = first; c < k; c += step) {
      produce(c, y, true);
#pragma unroll
      for (int i = 0; i < kChunk; ++i) y[i] = clamp_fp8(y[i] * inv_scale);
      store_chunk<kAligned>(out_row, c, k, y);
    }
  } else if constexpr (kMode == ScaleMode::kPerToken) {
    float amax = 0.0f;
    if (k <= kCachedChunks * step) {  // block-uniform: every thread takes the same branch
      float cached[kCachedChunks][kChunk];
#pragma unroll
      for (int j = 0; j < kCachedChunks; ++j) {
        if (first + j * step < k) {
          produce(first + j * step, cached[j], true);
#pragma unroll
          for (int i = 0; i < kChunk; ++i) amax = fmaxf(amax, fabsf(cached[j][i]));
        }
      }
      const float scale = write_row_scale(amax, row, sa);
#pragma unroll
      for (int j = 0; j < kCachedChunks; ++j) {
        if (first + j * step < k)
          store_codes<kAligned>(out_row, first + j * step, k, cached[j], scale);
      }
      return;
    }
    for (int64_t c = first; c < k; c += step) {
      produce(c, y, false);
#pragma unroll
      for (int i = 0; i < kChunk; ++i) amax = fmaxf(amax, fabsf(y[i]));
    }
    const float scale = write_row_scale(amax, row, sa);
    for (int64_t c = first; c < k; c += step) {
      produce(c, y, true);
      store_codes<kAligned>(out_row, c, k, y, scale);
    }
  } else {
    // k % 128 == 0 and step % 128 == 0: the 16 threads of a group (an aligned
    // half-warp) enter and leave the loop together, so group_max is complete.
    for (int64_t c = first; c < k; c += step) {
      produce(c, y, true);
      float amax = kGroupEps;
#pragma unroll
      for (int i = 0; i < kChunk; ++i) amax = fmaxf(amax, fabsf(y[i]));
      const float scale = group_max(amax) / kFp8Max;
      if (threadIdx.x % kThreadsPerGroup == 0)
        sa.scales[row * sa.row_stride + (c / kGroupSize) * sa.group_stride] = scale;
#pragma unroll
      for (int i = 0; i < kChunk; ++i) y[i] = clamp_fp8_group(y[i] / scale);
      store_chunk<kAligned>(out_row, c, k, y);
    }
  }
}

// Launches a row kernel over the M input rows (one block each):
// launch.template operator()<T>(grid, block, stream) with T the input dtype;
// then padding_rows_kernel over the M' - M padding rows. Threads per row: one
// chunk each, up to 1024 for few rows (as upstream's rms_norm launch) and
// 256 for many, a multiple of 32 (block reductions).
template <ScaleMode kMode, typename Launch>
void launch_per_row(const char* op, ScalarType dtype, const Tensor& out, const ScaleArgs& sa,
                    const QuantShape& s, Launch&& launch) {
  if (s.m_out == 0) return;
  const torch::stable::accelerator::DeviceGuard guard(s.device);
  const cudaStream_t stream = current_stream(s.device);
  const int64_t max_threads = s.m < 256 ? 1024 : 256;
  const int64_t warps = ((s.k + kChunk - 1) / kChunk + 31) / 32;
  const dim3 block(static_cast<unsigned>(std::min(max_threads, warps * 32)));
  if (s.m > 0) {
    dispatch_activation(op, dtype, [&]<typename T>() {
      launch.template operator()<T>(dim3(static_cast<unsigned>(s.m)), block, stream);
    });
  }
  if (s.m_out > s.m) {
    padding_rows_kernel<kMode><<<static_cast<unsigned>(s.m_out - s.m), 256, 0, stream>>>(
        static_cast<uint8_t*>(out.data_ptr()), sa, s.m, s.k);
  }
  check_launch(op);
}

}  // namespace custom_fp8
