// Host-side helpers for the stable-ABI entry points: argument checks that
// name the argument (same wording as vllm/custom_fp8/_checks.py), the current
// CUDA stream and device properties.
#pragma once

#include <torch/csrc/inductor/aoti_torch/c/shim.h>
#include <torch/csrc/stable/accelerator.h>
#include <torch/csrc/stable/tensor.h>
#include <torch/headeronly/core/ScalarType.h>
#include <torch/headeronly/util/Exception.h>
#include <torch/headeronly/util/shim_utils.h>

#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>

namespace custom_fp8 {

using torch::stable::Tensor;
using ScalarType = torch::headeronly::ScalarType;

// CF8_CHECK(cond, op, arg, expected, got...): throws
//   "custom_fp8.<op>: '<arg>' must be <expected>, got <got>"
#define CF8_CHECK(cond, op, arg, expected, ...)                       \
  STD_TORCH_CHECK(cond, "custom_fp8.", op, ": '", arg, "' must be ", \
                  expected, ", got ", __VA_ARGS__)

inline std::string shape_str(const Tensor& t) {
  std::ostringstream s;
  s << "shape [";
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? ", " : "") << t.size(i);
  s << "]";
  return s.str();
}

inline std::string strides_str(const Tensor& t) {
  std::ostringstream s;
  s << "strides (";
  for (int64_t i = 0; i < t.dim(); ++i) s << (i ? ", " : "") << t.stride(i);
  s << ")";
  return s.str();
}

inline const char* dtype_name(ScalarType t) {
  switch (t) {
    case ScalarType::Float: return "torch.float32";
    case ScalarType::BFloat16: return "torch.bfloat16";
    case ScalarType::Half: return "torch.float16";
    case ScalarType::Float8_e4m3fn: return "torch.float8_e4m3fn";
    default: return "another dtype";
  }
}

inline bool aligned16(const Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0;
}

// The device every tensor of a call must be on; our kernels are sm_90a only.
inline int32_t check_device(const char* op, const Tensor& first) {
  STD_TORCH_CHECK(first.is_cuda(), "custom_fp8.", op,
                  ": tensors must be CUDA tensors, got a CPU tensor");
  int32_t index = first.get_device_index();
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, index);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, index);
  STD_TORCH_CHECK(major == 9 && minor == 0, "custom_fp8.", op,
                  ": the CUDA kernels need compute capability 9.0 (sm_90a), "
                  "got ", major, ".", minor);
  return index;
}

inline void check_same_device(const char* op, const char* arg, const Tensor& t,
                              int32_t device) {
  STD_TORCH_CHECK(t.is_cuda() && t.get_device_index() == device, "custom_fp8.",
                  op, ": '", arg, "' must be on cuda:", device,
                  " (the device of the first tensor), got ",
                  t.is_cuda() ? "another CUDA device" : "a CPU tensor");
}

inline cudaStream_t current_stream(int32_t device) {
  void* stream = nullptr;
  TORCH_ERROR_CODE_CHECK(aoti_torch_get_current_cuda_stream(device, &stream));
  return reinterpret_cast<cudaStream_t>(stream);
}

inline void check_launch(const char* op) {
  cudaError_t err = cudaGetLastError();
  STD_TORCH_CHECK(err == cudaSuccess, "custom_fp8.", op,
                  ": kernel launch failed: ", cudaGetErrorString(err));
}

}  // namespace custom_fp8
