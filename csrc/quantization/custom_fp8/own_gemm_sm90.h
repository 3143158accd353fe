// The host side our own GEMMs (the split-K decode GEMM and the wave GEMM)
// share: the TMA descriptor they load their operands through, and their
// launch.
#pragma once

#include <cuda.h>

#include <cstdint>

#include "cutlass/cuda_host_adapter.hpp"

#include "gemm_run_sm90.cuh"
#include "torch_utils.h"

namespace custom_fp8::sm90 {

// Bytes of K per TMA box: one 128-byte swizzle span.
constexpr int kTmaBoxK = 128;

// A [rows, K] e4m3 operand, K contiguous, row stride ld bytes, read in boxes
// of box_rows x 128 bytes into 128B-swizzled shared memory (the layout
// ldmatrix-free loads and K-major WGMMA descriptors read); zeros past its
// edges.
inline CUtensorMap k_major_tensor_map(const void* base, int64_t rows, int64_t k, int64_t ld,
                                      int box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(k), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(ld)};
  const cuuint32_t box[2] = {kTmaBoxK, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult status = CUTLASS_CUDA_DRIVER_WRAPPER_CALL(cuTensorMapEncodeTiled)(
      &map, CU_TENSOR_MAP_DATA_TYPE_UINT8, 2, const_cast<void*>(base), dims, strides, box,
      element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  STD_TORCH_CHECK(status == CUDA_SUCCESS, "custom_fp8.scaled_mm: cuTensorMapEncodeTiled failed (",
                  static_cast<int>(status), ") for a [", rows, ", ", k, "] operand");
  return map;
}

// Launches kernel<<<grid, threads, smem>>>(args...) on `stream` with PDL as
// the CUTLASS GEMMs launch (pdl_enabled), in thread-block clusters of
// `cluster` CTAs along x where cluster > 0; fails naming `what`.
template <class... Params, class... Args>
void launch_own_gemm(const char* what, void (*kernel)(Params...), dim3 grid, int threads, int smem,
                     int cluster, cudaStream_t stream, const Args&... args) {
  cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  cudaLaunchAttribute attrs[2];
  int num_attrs = 0;
  attrs[num_attrs].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attrs[num_attrs++].val.programmaticStreamSerializationAllowed = pdl_enabled();
  if (cluster > 0) {
    attrs[num_attrs].id = cudaLaunchAttributeClusterDimension;
    attrs[num_attrs++].val.clusterDim = {static_cast<unsigned>(cluster), 1, 1};
  }
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = dim3(threads, 1, 1);
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = attrs;
  config.numAttrs = num_attrs;
  const cudaError_t status = cudaLaunchKernelEx(&config, kernel, args...);
  STD_TORCH_CHECK(status == cudaSuccess, "custom_fp8.scaled_mm: ", what, " launch failed: ",
                  cudaGetErrorString(status));
}

}  // namespace custom_fp8::sm90
