// The Hopper (sm_90a) block-scaled FP8 GEMM of block-FP8 checkpoints:
//   out[m, n] = sum_kb scale_a[m, kb] * scale_b[kb, n / 128] * (a @ b)[m, n | kb]
// with 1x128 activation groups and 128x128 weight blocks. CUTLASS's
// warp-specialized blockwise main loop applies the scales to each 128-deep
// partial product in float32 (software promotion), the epilogue rounds once
// to bf16/fp16 and stores with TMA.
//
// Swap-AB (small or ragged M): out^T = b^T a^T, so the weight fills the
// 128-row tiles; the activation scales then have granularity 1 along N'.
#pragma once

#include <type_traits>

#include "cute/tensor.hpp"
#include "cutlass/cutlass.h"
#include "cutlass/detail/blockwise_scale_layout.hpp"
#include "cutlass/epilogue/collective/collective_builder.hpp"
#include "cutlass/epilogue/fusion/operations.hpp"
#include "cutlass/gemm/collective/collective_builder.hpp"
#include "cutlass/gemm/device/gemm_universal_adapter.h"
#include "cutlass/gemm/kernel/gemm_universal.hpp"

#include "block_scaled_mm_sm90.h"
#include "gemm_config_sm90.h"
#include "gemm_run_sm90.cuh"
#include "torch_utils.h"

namespace custom_fp8::sm90 {

using namespace cute;

constexpr int kBlock = 128;  // K and N extent of a weight scale block

template <class ElementD_, class Config>
struct BlockScaledMmKernel {
  using ElementAB = cutlass::float_e4m3_t;
  using ElementD = ElementD_;
  using ElementAcc = float;
  using TileShape = typename Config::TileShape;
  static constexpr bool kSwapAB = Config::kSwapAB;

  using LayoutA = cutlass::layout::RowMajor;
  using LayoutB = cutlass::layout::ColumnMajor;
  using LayoutD = std::conditional_t<kSwapAB, cutlass::layout::ColumnMajor,
                                     cutlass::layout::RowMajor>;
  static constexpr int kAlignmentAB = 128 / cutlass::sizeof_bits<ElementAB>::value;
  static constexpr int kAlignmentD = 128 / cutlass::sizeof_bits<ElementD>::value;

  // Scale granularity along the problem's (M', N', K) and the majorness of
  // each scale tensor: activation scales are column-major (M-major),
  // weight scales are weight_scale_inv^T (K-major).
  static constexpr int kGranM = kSwapAB ? kBlock : 1;
  static constexpr int kGranN = kSwapAB ? 1 : kBlock;
  static constexpr auto kMajorSFA = kSwapAB ? cute::GMMA::Major::K : cute::GMMA::Major::MN;
  static constexpr auto kMajorSFB = kSwapAB ? cute::GMMA::Major::MN : cute::GMMA::Major::K;
  using ScaleConfig =
      cutlass::detail::Sm90BlockwiseScaleConfig<kGranM, kGranN, kBlock, kMajorSFA, kMajorSFB>;
  using LayoutSFA = decltype(ScaleConfig::deduce_layoutSFA());
  using LayoutSFB = decltype(ScaleConfig::deduce_layoutSFB());

  using CollectiveEpilogue = typename cutlass::epilogue::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, TileShape,
      typename Config::ClusterShape, cutlass::epilogue::collective::EpilogueTileAuto,
      ElementAcc, float, void, LayoutD, kAlignmentD, ElementD, LayoutD, kAlignmentD,
      typename Config::EpilogueSchedule,
      cutlass::epilogue::fusion::LinearCombination<ElementD, float, void, float>>::CollectiveOp;

  using CollectiveMainloop = typename cutlass::gemm::collective::CollectiveBuilder<
      cutlass::arch::Sm90, cutlass::arch::OpClassTensorOp, ElementAB,
      cute::tuple<LayoutA, LayoutSFA>, kAlignmentAB, ElementAB, cute::tuple<LayoutB, LayoutSFB>,
      kAlignmentAB, ElementAcc, TileShape, typename Config::ClusterShape,
      cutlass::gemm::collective::StageCountAutoCarveout<static_cast<int>(
          sizeof(typename CollectiveEpilogue::SharedStorage))>,
      typename Config::KernelSchedule>::CollectiveOp;

  using GemmKernel = cutlass::gemm::kernel::GemmUniversal<Shape<int, int, int, int>,
                                                          CollectiveMainloop, CollectiveEpilogue>;
  using Gemm = cutlass::gemm::device::GemmUniversalAdapter<NamedKernel<GemmKernel>>;
};

// Scale layouts with the caller's strides: `rows` scale rows (granularity 1)
// whose k-blocks are `ld` apart, or `blocks` row blocks (granularity 128)
// whose k-blocks are contiguous and blocks are `ld` apart.
template <class Layout>
Layout per_row_scale_layout(int rows, int k_blocks, int ld) {
  return make_layout(make_shape(make_shape(Int<1>{}, rows), make_shape(Int<kBlock>{}, k_blocks), 1),
                     make_stride(make_stride(_0{}, _1{}), make_stride(_0{}, ld), 0));
}

template <class Layout>
Layout per_block_scale_layout(int blocks, int k_blocks, int ld) {
  return make_layout(
      make_shape(make_shape(Int<kBlock>{}, blocks), make_shape(Int<kBlock>{}, k_blocks), 1),
      make_stride(make_stride(_0{}, ld), make_stride(_0{}, _1{}), 0));
}

template <class Kernel>
void run_block_scaled_mm(const BlockScaledMmArgs& p, cudaStream_t stream) {
  using Gemm = typename Kernel::Gemm;
  using GemmKernel = typename Kernel::GemmKernel;
  using ElementAB = typename Kernel::ElementAB;
  using ElementD = typename Kernel::ElementD;
  using LayoutSFA = typename Kernel::LayoutSFA;
  using LayoutSFB = typename Kernel::LayoutSFB;
  constexpr bool kSwap = Kernel::kSwapAB;

  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  const int k_blocks = k / kBlock, n_blocks = (n + kBlock - 1) / kBlock;
  auto* a = static_cast<const ElementAB*>(p.a);
  auto* b = static_cast<const ElementAB*>(p.b);
  const GemmStrides<GemmKernel, kSwap> strides(p.lda, p.ldb, p.n);
  const int ld_a = static_cast<int>(p.scale_a_ld), ld_b = static_cast<int>(p.scale_b_ld);

  typename GemmKernel::MainloopArguments mainloop{};
  if constexpr (kSwap) {
    mainloop.ptr_A = b;
    mainloop.dA = strides.a;
    mainloop.ptr_B = a;
    mainloop.dB = strides.b;
    mainloop.ptr_SFA = p.scale_b;
    mainloop.layout_SFA = per_block_scale_layout<LayoutSFA>(n_blocks, k_blocks, ld_b);
    mainloop.ptr_SFB = p.scale_a;
    mainloop.layout_SFB = per_row_scale_layout<LayoutSFB>(m, k_blocks, ld_a);
  } else {
    mainloop.ptr_A = a;
    mainloop.dA = strides.a;
    mainloop.ptr_B = b;
    mainloop.dB = strides.b;
    mainloop.ptr_SFA = p.scale_a;
    mainloop.layout_SFA = per_row_scale_layout<LayoutSFA>(m, k_blocks, ld_a);
    mainloop.ptr_SFB = p.scale_b;
    mainloop.layout_SFB = per_block_scale_layout<LayoutSFB>(n_blocks, k_blocks, ld_b);
  }

  typename GemmKernel::Arguments args{
      cutlass::gemm::GemmUniversalMode::kGemm,
      kSwap ? make_shape(n, m, k, 1) : make_shape(m, n, k, 1),
      mainloop,
      {{}, nullptr, strides.d, static_cast<ElementD*>(p.out), strides.d}};
  // every block configuration is data-parallel: no workspace
  auto no_workspace = [](size_t) -> void* {
    STD_TORCH_CHECK(false, "custom_fp8.block_scaled_mm: this configuration needs a workspace");
    return nullptr;
  };
  // No PDL: CUTLASS 4.2.0's cooperative kernel loads the block scales in its
  // MainloopAux warp without waiting on the previous grid, so launched early
  // it could read activation scales the quant has not written yet.
  run_gemm<Gemm>("custom_fp8.block_scaled_mm", args, no_workspace, p.m, p.n, p.k,
                 /*pdl=*/false, stream);
}

}  // namespace custom_fp8::sm90
