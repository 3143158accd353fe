// What the scaled and the block-scaled sm_90a GEMM share when they launch a
// CUTLASS kernel: the operand strides (with or without swap-AB) and the
// checked run.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"

#include "torch_utils.h"

namespace custom_fp8::sm90 {

// The strides CUTLASS sees for a [M, K] row-major (leading dimension lda),
// b [K, N] column-major (ldb) and out [M, N] row-major. With swap-AB it
// computes out^T = b^T a^T: a and b trade places and out is written
// column-major.
template <class GemmKernel, bool kSwap>
struct GemmStrides {
  typename GemmKernel::StrideA a;
  typename GemmKernel::StrideB b;
  typename GemmKernel::StrideD d;

  GemmStrides(int64_t lda, int64_t ldb, int64_t n)
      : a(cute::make_stride(kSwap ? ldb : lda, cute::Int<1>{}, int64_t(0))),
        b(cute::make_stride(kSwap ? lda : ldb, cute::Int<1>{}, int64_t(0))) {
    if constexpr (kSwap) {
      d = cute::make_stride(cute::Int<1>{}, n, int64_t(0));
    } else {
      d = cute::make_stride(n, cute::Int<1>{}, int64_t(0));
    }
  }
};

// Whether the scaled GEMMs launch with programmatic dependent launch (PDL):
// a GEMM then starts while the kernel before it (our quant or fused producer,
// which allows it early: allow_dependent_launch in quant_utils.cuh) still
// runs, sets itself up and prefetches its first weight tiles, and waits for
// that kernel to finish (griddepcontrol.wait, compiled in by
// CUTLASS_ENABLE_GDC_FOR_SM90) before it reads anything that kernel writes.
// VLLM_CUSTOM_FP8_PDL=0 turns it off (read once per process).
inline bool pdl_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("VLLM_CUSTOM_FP8_PDL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// Runs the CUTLASS kernel of `args`, or fails with op's name: a shape CUTLASS
// cannot implement, or a launch error. workspace(bytes) provides the
// kernel's workspace where it needs one (stream-K). pdl: launch with PDL, only
// for a kernel compiled to wait on the previous grid.
template <class Gemm, class Workspace>
void run_gemm(const char* op, const typename Gemm::Arguments& args, Workspace&& workspace,
              int64_t m, int64_t n, int64_t k, bool pdl, cudaStream_t stream) {
  Gemm gemm;
  STD_TORCH_CHECK(gemm.can_implement(args) == cutlass::Status::kSuccess, op,
                  ": CUTLASS cannot implement M=", m, " N=", n, " K=", k);
  const size_t workspace_bytes = Gemm::get_workspace_size(args);
  const cutlass::Status status =
      gemm.run(args, workspace_bytes ? workspace(workspace_bytes) : nullptr, stream,
               /*cuda_adapter=*/nullptr, pdl);
  STD_TORCH_CHECK(status == cutlass::Status::kSuccess, op, ": CUTLASS error ",
                  cutlassGetStatusString(status));
}

}  // namespace custom_fp8::sm90
