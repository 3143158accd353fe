// The Hopper (sm_90a) FP8 GEMM with the dequant fused into its epilogue:
//   out[M, N] = scale_a * (scale_b * (a[M, K] @ b[K, N])) + bias
// CUTLASS 3.x collectives: TMA loads, warp-specialized WGMMA main loop with
// float32 promotion of the FP8 accumulators every 128, 256 or 512 of K, and an epilogue
// visitor tree (EVT) that applies the scales and bias in float32 before one
// rounding to bf16/fp16 and a TMA store.
//
// Swap-AB (small M): CUTLASS computes out^T = b^T a^T, so the large N fills
// the 64-row WGMMA tiles and the few tokens become the narrow tile N.
#pragma once

#include <type_traits>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/sm90_callbacks_tma_warpspecialized.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"

#include "gemm_config_sm90.h"
#include "gemm_run_sm90.cuh"
#include "scaled_mm_sm90.h"
#include "torch_utils.h"

namespace custom_fp8::sm90 {

using namespace cute;
namespace fusion = cutlass::epilogue::fusion;

// The swap-AB decode kernels (non-persistent: CTA blockIdx.x owns weight rows
// [64 * blockIdx.x, +64) over the whole of K) stream a weight they read once.
// Before the kernel proper, which waits for the grid it depends on (PDL,
// gemm_run_sm90.cuh) before its first load, one thread prefetches into L2
// the weight k-tiles the pipeline will load first. That grid never writes the
// weight, so reading it early is safe; the loads after the wait hit L2, and
// the time the previous kernel runs is no longer lost to the weight stream.
template <class Kernel>
struct WeightPrefetch : Kernel {
  CUTLASS_DEVICE void operator()(typename Kernel::Params const& params, char* smem_buf) {
    using Mainloop = typename Kernel::CollectiveMainloop;
    if (threadIdx.x == 0) {
      auto problem = append<4>(params.problem_shape, Int<1>{});
      cute::Tensor gA_mkl = get<0>(Mainloop{}.load_init(problem, params.mainloop));  // (BLK_M,BLK_K,m,k,l)
      cute::Tensor gA = gA_mkl(_, _, int(blockIdx.x), _, int(blockIdx.z));             // (BLK_M,BLK_K,k)
      cute::Tensor tAgA = params.mainloop.tma_load_a.get_slice(0).partition_S(gA);     // (TMA,TMA_M,TMA_K,k)
      const int k_tiles = min(int(size<3>(tAgA)), Mainloop::DispatchPolicy::Stages);
      for (int k = 0; k < k_tiles; ++k) prefetch(params.mainloop.tma_load_a, tAgA(_, _, _, k));
    }
    Kernel::operator()(params, smem_buf);
  }
};

template <class ElementD_, class Config>
struct ScaledMmKernel {
  using ElementAB = cutlass::float_e4m3_t;  // A and B: e4m3 codes
  using ElementD = ElementD_;                // output: bfloat16_t or half_t
  using ElementAcc = float;                  // accumulators (promoted every kPromoteEveryK)
  using TileShape = typename Config::TileShape;
  static constexpr bool kSwapAB = Config::kSwapAB;
  // The main loop counts its promotion interval in 32-deep FP8 MMAs.
  static constexpr uint32_t kPromotionInterval = Config::kPromoteEveryK / 32;
  static_assert(Config::kPromoteEveryK % size<2>(TileShape{}) == 0,
                "promotion happens between k-tiles");

  // Problem operands, both K-major as FP8 WGMMA needs. No swap: A' = a,
  // B' = b, D' = out (row-major). Swap: A' = b^T (the [N, K] weight),
  // B' = a, D' = out^T, i.e. out row-major seen as column-major.
  using LayoutA = cutlass::layout::RowMajor;
  using LayoutB = cutlass::layout::ColumnMajor;
  using LayoutD = std::conditional_t<kSwapAB, cutlass::layout::ColumnMajor,
                                     cutlass::layout::RowMajor>;
  static constexpr int kAlignmentAB = 128 / cutlass::sizeof_bits<ElementAB>::value;
  static constexpr int kAlignmentD = 128 / cutlass::sizeof_bits<ElementD>::value;

  // Epilogue visitor tree. A broadcast with a `bool` stride is a vector when
  // the stride is true and a scalar when false: one kernel serves per-tensor
  // and per-token scale_a, per-tensor and per-channel scale_b. A null bias
  // pointer reads as 0.
  using RowVector = fusion::Sm90ColBroadcast<0, TileShape, float, float, Stride<bool, _0, _0>>;
  using ColVector = fusion::Sm90RowBroadcast<0, TileShape, float, float, Stride<_0, bool, _0>>;
  using ScaleA = std::conditional_t<kSwapAB, ColVector, RowVector>;  // along M
  using ScaleB = std::conditional_t<kSwapAB, RowVector, ColVector>;  // along N
  using Bias = std::conditional_t<
      kSwapAB, fusion::Sm90ColBroadcast<0, TileShape, ElementD, float, Stride<_1, _0, _0>>,
      fusion::Sm90RowBroadcast<0, TileShape, ElementD, float, Stride<_0, _1, _0>>>;
  using Multiply = fusion::Sm90Compute<cutlass::multiplies, float, float,
                                       cutlass::FloatRoundStyle::round_to_nearest>;
  using MultiplyAdd = fusion::Sm90Compute<cutlass::homogeneous_multiply_add, ElementD, float,
                                          cutlass::FloatRoundStyle::round_to_nearest>;
  using ScaledAcc = fusion::Sm90EVT<Multiply, ScaleB, fusion::Sm90AccFetch>;
  using EpilogueEVT = fusion::Sm90EVT<MultiplyAdd, ScaleA, ScaledAcc, Bias>;

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape,
      typename Config::ClusterShape, cutlass::epilogue::collective::EpilogueTileAuto,
      ElementAcc, float, void, LayoutD, kAlignmentD, ElementD, LayoutD, kAlignmentD,
      typename Config::EpilogueSchedule, EpilogueEVT>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB, LayoutA, kAlignmentAB,
      ElementAB, LayoutB, kAlignmentAB, ElementAcc, TileShape, typename Config::ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      typename Config::KernelSchedule>::CollectiveOp;

  using GemmKernel =
      cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>, CollectiveMainloop,
                                           CollectiveEpilogue, typename Config::TileScheduler>;
  static constexpr bool kPrefetchWeight =
      kSwapAB && std::is_same_v<typename Config::KernelSchedule,
                                cutlass::gemm::KernelTmaWarpSpecialized>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<NamedKernel<
      std::conditional_t<kPrefetchWeight, WeightPrefetch<GemmKernel>, GemmKernel>>>;
};

template <class Kernel>
void run_scaled_mm(const ScaledMmArgs& p, cudaStream_t stream) {
  using Gemm = typename Kernel::Gemm;
  using GemmKernel = typename Kernel::GemmKernel;
  using ElementAB = typename Kernel::ElementAB;
  using ElementD = typename Kernel::ElementD;
  constexpr bool kSwap = Kernel::kSwapAB;

  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  auto* a = static_cast<const ElementAB*>(p.a);
  auto* b = static_cast<const ElementAB*>(p.b);
  const GemmStrides<GemmKernel, kSwap> strides(p.lda, p.ldb, p.n);

  typename Kernel::ScaleA::Arguments scale_a{p.scale_a, 0.0f, {}};
  typename Kernel::ScaleB::Arguments scale_b{p.scale_b, 0.0f, {}};
  if constexpr (kSwap) {
    scale_a.dRow = make_stride(_0{}, p.scale_a_per_token, _0{});
    scale_b.dCol = make_stride(p.scale_b_per_channel, _0{}, _0{});
  } else {
    scale_a.dCol = make_stride(p.scale_a_per_token, _0{}, _0{});
    scale_b.dRow = make_stride(_0{}, p.scale_b_per_channel, _0{});
  }
  typename Kernel::Bias::Arguments bias{static_cast<const ElementD*>(p.bias), ElementD(0), {}};

  typename GemmKernel::Arguments args{
      cutlass::gemm::GemmUniversalMode::kGemm,
      kSwap ? make_shape(n, m, k, 1) : make_shape(m, n, k, 1),
      {kSwap ? b : a, strides.a, kSwap ? a : b, strides.b, Kernel::kPromotionInterval},
      {{scale_a, {scale_b, {}, {}}, bias, {}},
       nullptr, strides.d, static_cast<ElementD*>(p.out), strides.d}};
  // The translation unit decides whether the kernel waits on the previous
  // grid (scaled_mm_sm90_streamk_*.cu builds without it).
#if defined(CUTLASS_ENABLE_GDC_FOR_SM90)
  const bool pdl = pdl_enabled();
#else
  const bool pdl = false;
#endif
  run_gemm<Gemm>("custom_fp8.scaled_mm", args, p.workspace, p.m, p.n, p.k, pdl, stream);
}

}  // namespace custom_fp8::sm90
