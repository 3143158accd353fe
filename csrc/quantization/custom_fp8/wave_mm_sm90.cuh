// The wave GEMM (sm_90a), our main loop for compute-bound M (issue 17):
// out[M, N] = scale_a * (scale_b * (a @ b)) + bias (per-tensor, per-token and
// per-channel scales), or, block-scaled, out[m, n] = sum over k-blocks kb of
// scale_a[m, kb] * scale_b[kb, n / 128] * (a @ b)[m, n | kb] (1x128 activation
// groups, 128x128 weight blocks), the FP8 tensor-core sums promoted to float32
// every 128 of K without the promotion idling the tensor cores.
//
// Why a kernel of our own: CUTLASS 4.2's FP8 main loop waits for every MMA in
// flight at each promotion, its cooperative warpgroups promote at the same
// moments and pingpong's order barrier keeps one's promotion out of the
// other's MMAs, and its promotion buffer doubles the accumulators, capping a
// warpgroup at 64 x 128 (docs/performance.md: 0.87x upstream's FastAccum
// GEMM at M >= 1024). Here, in the way of DeepGEMM's sm90 FP8 GEMM and of
// CUTLASS's blockwise-scaling main loop (NumSplitsM):
//   - a CTA computes kBlockM x kBlockN tiles of out (256 x 128, or 128 rows
//     by up to 192) in waves of 128 rows; each of its two math warpgroups
//     owns 64 rows of every wave, with one 64 x kBlockN temporary
//     accumulator that the waves share (256 x 128: 3 x kBlockN / 2
//     registers per thread where a promotion buffer per wave would take 4 x);
//   - per 128-deep k-block and wave, a warpgroup issues four WGMMAs into the
//     temporary accumulator, waits for them and adds it to the wave's sums
//     (the promotion: kBlockN / 2 FADDs per thread; block-scaled, FFMAs by
//     the k-block's scale products, which reach shared memory with the
//     k-block's operands: the latency of their loads is the producer's). The
//     two warpgroups meet only at the producer's barriers, so one's promotion
//     can run while the other's WGMMAs keep the tensor cores busy (left
//     alone they fall into step, released by the same stage, and promote at
//     the same time: docs/performance.md, "Compute-bound M");
//   - 128 x 128 tiles (one wave, 64 accumulator registers to spare) keep two
//     temporary accumulators: a warpgroup issues k-block kb + 1's WGMMAs
//     before it promotes k-block kb, so its own promotion never waits on
//     the tensor cores either;
//   - setmaxnreg: the producer warpgroup keeps 40 registers per thread and
//     the math warpgroups take 232;
//   - one producer thread streams 128-deep k-blocks of the kBlockM activation
//     rows and the kBlockN weight rows with TMA, 128-byte swizzled (the layout
//     K-major WGMMA descriptors read), through a ring of 4 to 6 stages;
//     block-scaled, a second producer warp copies each k-block's scales of
//     the tile into the same stage (cp.async, arriving on its barrier);
//   - in clusters of kClusterN = 2 CTAs (the *_cluster2 configurations), the
//     two CTAs compute neighbouring tiles along N, which share their
//     activation rows: each CTA's producer loads half of them and multicasts
//     it to both, so L2 serves a quarter (256 x 128) to a fifth (128 x 192)
//     fewer bytes per MMA. A stage is refilled only once the math warps of
//     both CTAs are done with it;
//   - persistent: one CTA (cluster) per SM (pair of SMs) walks the tiles
//     (bands of group_m tiles along M, M fastest in a band, so the CTAs that
//     run together share the band's activation rows and a few weight tiles
//     in L2), and the producer loads the next tile's k-blocks while the math
//     warpgroups write this one's out;
//   - the epilogue applies the scales and the bias in float32 (block-scaled:
//     applied at the promotions already) and rounds once, from the
//     accumulators straight to global memory;
//   - PDL: every thread waits for the grid it depends on (the activations,
//     the scales, the bias) before its first read, and the math warpgroups
//     let the next grid launch after their last MMA.
// TMA zero-fills what lies past M, N and K.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <utility>

#include "cute/arch/cluster_sm90.hpp"
#include "cute/arch/copy_sm80.hpp"
#include "cute/arch/copy_sm90_desc.hpp"
#include "cute/arch/copy_sm90_tma.hpp"
#include "cute/arch/mma_sm90_desc.hpp"
#include "cute/arch/mma_sm90_gmma.hpp"
#include "cutlass/arch/barrier.h"
#include "cutlass/arch/grid_dependency_control.h"
#include "cutlass/arch/reg_reconfig.h"
#include "cutlass/numeric_types.h"

#include "scaled_output_sm90.cuh"
#include "tma_ring_sm90.cuh"

namespace custom_fp8::sm90::wave {

constexpr int kWaveM = 128;   // one wave: 64 rows per math warpgroup
constexpr int kBlockK = 128;  // one 128-byte swizzle span: one TMA box, one promotion
constexpr int kMmaK = 32;     // K of one e4m3 WGMMA
constexpr int kMathWarpgroups = kWaveM / 64;
constexpr int kMathWarps = 4 * kMathWarpgroups;
constexpr int kThreads = 128 * (kMathWarpgroups + 1);  // + the producer warpgroup, last
constexpr int kProducerRegisters = 40, kMathRegisters = 232;

// Block-scaled operands' scales (kBlockScaled: K % 128 == 0, kBlockN == 128).
struct BlockScales {
  const float* a;  // [M, K / 128], column-major: scale_a[m, kb] at a[kb * a_ld + m]
  const float* b;  // [K / 128, N / 128], K-major: scale_b[kb, nb] at b[nb * b_ld + kb]
  int64_t a_ld, b_ld;
};

struct Params {
  ScaledOutput out;    // block-scaled: only out, m and n
  BlockScales block;   // block-scaled only
  int k_blocks;  // ceil(K / kBlockK)
  int m_tiles;   // ceil(M / kBlockM)
  int n_tiles;   // ceil(N / (kClusterN * kBlockN)): a cluster's tiles count as one
  int group_m;   // M tiles per band of the tile order
};

// The block indices along M and N of cluster tile `tile`'s part that the
// CTA of cluster rank `rank` computes: bands of group_m M tiles, one after
// another along M, and in a band M fastest.
struct TileBlocks {
  int m, n;
};
template <int kClusterN>
__device__ __forceinline__ TileBlocks tile_blocks(const Params& p, int tile, int rank) {
  const int band_tiles = p.group_m * p.n_tiles;
  const int band = tile / band_tiles, in_band = tile % band_tiles;
  const int band_m = min(p.group_m, p.m_tiles - band * p.group_m);  // the last band may be narrower
  return {band * p.group_m + in_band % band_m, in_band / band_m * kClusterN + rank};
}

// 64 x kBlockN WGMMAs of e4m3 into float32.
template <int kBlockN>
struct Mma;
template <>
struct Mma<128> {
  using Op = cute::SM90::GMMA::MMA_64x128x32_F32E4M3E4M3_SS_TN<>;
};
template <>
struct Mma<192> {
  using Op = cute::SM90::GMMA::MMA_64x192x32_F32E4M3E4M3_SS_TN<>;
};

template <int kBlockM, int kBlockN>
struct alignas(1024) SharedStorage {  // 1024: the 128B-swizzle atom (8 rows x 128 bytes)
  // As many stages of kBlockM + kBlockN rows x 128 bytes as fit in ~200 KB.
  static constexpr int kStages = (200 << 10) / ((kBlockM + kBlockN) * kBlockK);
  uint8_t a[kStages][kBlockM * kBlockK];
  uint8_t b[kStages][kBlockN * kBlockK];
  float scale_a[kStages][kBlockM];  // block-scaled: the k-block's scales of the tile's rows
  float scale_b[kStages];           // and of its weight block
  uint64_t full[kStages];   // TMA bytes landed
  uint64_t empty[kStages];  // every math warp done with the stage
};

template <int kBlockM, int kBlockN>
constexpr int kSmemBytes = sizeof(SharedStorage<kBlockM, kBlockN>) + 1024;  // + the alignment slack

// The WGMMA descriptor of a K-major tile that TMA wrote with SWIZZLE_128B:
// rows of 128 bytes in 8-row (1024-byte) swizzle atoms. `tile` is an atom's
// start, or that advanced along K by a multiple of 32 bytes within the row:
// the hardware applies the swizzle to the address bits, so the same atom
// serves the four k-steps of a k-block.
__device__ __forceinline__ uint64_t smem_desc(const uint8_t* tile) {
  cute::GmmaDescriptor d;
  d.bitfield.start_address_ = static_cast<uint16_t>(cute::cast_smem_ptr_to_uint(tile) >> 4);
  d.bitfield.leading_byte_offset_ = 1;         // unused by swizzled K-major layouts
  d.bitfield.stride_byte_offset_ = 1024 >> 4;  // from one 8-row atom to the next
  d.bitfield.base_offset_ = 0;
  d.bitfield.layout_type_ = static_cast<uint8_t>(cute::SM90::GMMA::LayoutType::B128);
  return d.desc_;
}

// A float in shared memory, read as such (ld.shared): the kernel's shared
// storage is addressed through a generic pointer, which the compiler reads
// with slower generic loads.
__device__ __forceinline__ float load_shared(const float* p) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(cute::cast_smem_ptr_to_uint(p)));
  return v;
}

// The 4 x 4 transpose of 32-bit words within a quad of lanes: lane q (its
// quad's q-th) holds w[u] (u < 4) and gets back {w[q] of lanes 0, 1, 2, 3}.
__device__ __forceinline__ uint4 quad_transpose(const uint32_t (&w)[4], int q, int lane) {
  const auto pick = [](const uint32_t (&x)[4], int i) {
    return i == 0 ? x[0] : i == 1 ? x[1] : i == 2 ? x[2] : x[3];
  };
  uint32_t got[4];
  got[0] = got[1] = got[2] = got[3] = pick(w, q);  // round 0: its own word (index q)
#pragma unroll
  for (int r = 1; r < 4; ++r) {
    // Round r: lane s sends w[(s - r) % 4], lane q receives from s = (q + r) % 4.
    const int from = (q + r) % 4;
    const uint32_t word = __shfl_sync(0xffffffff, pick(w, (q - r + 4) % 4), (lane & ~3) | from);
#pragma unroll
    for (int i = 0; i < 4; ++i) got[i] = i == from ? word : got[i];
  }
  return {got[0], got[1], got[2], got[3]};
}

// acc = a @ b^T over one 32-deep k-step (accumulate: acc += a @ b^T).
template <class Op, size_t... I>
__device__ __forceinline__ void mma(uint64_t a, uint64_t b, float* acc, bool accumulate,
                                    std::index_sequence<I...>) {
  Op::fma(a, b, acc[I]...,
          accumulate ? cute::SM90::GMMA::ScaleOut::One : cute::SM90::GMMA::ScaleOut::Zero);
}

template <class ElementD, int kBlockM, int kBlockN, int kClusterN, bool kBlockScaled>
__global__ void __launch_bounds__(kThreads, 1) wave_mm_kernel(const __grid_constant__ CUtensorMap a_map,
                                                              const __grid_constant__ CUtensorMap b_map,
                                                              const Params p) {
  using Barrier = cutlass::arch::ClusterTransactionBarrier;
  using Storage = SharedStorage<kBlockM, kBlockN>;
  using Op = typename Mma<kBlockN>::Op;
  static_assert(kBlockM % kWaveM == 0, "whole waves");
  static_assert(!kBlockScaled || kBlockN == 128, "one weight scale block per tile and k-block");
  static_assert(kClusterN == 1 || kClusterN == 2, "one CTA, or a pair sharing its activations");
  constexpr int kWaves = kBlockM / kWaveM;
  constexpr int kStages = Storage::kStages;
  constexpr int kAccum = kBlockN / 2;  // a 64 x kBlockN accumulator over 128 threads
  constexpr uint32_t kStageBytes = (kBlockM + kBlockN) * kBlockK;  // what lands in each CTA
  constexpr int kSliceM = kBlockM / kClusterN;  // activation rows each CTA loads for the cluster
  // One wave with room for a second temporary accumulator (3 x 64 registers).
  constexpr bool kPipelined = kWaves == 1 && kBlockN == 128;

  extern __shared__ uint8_t smem_raw[];
  auto& s = swizzle_aligned<Storage>(smem_raw);
  // Uniform per warp, so the compiler keeps the role branches in uniform registers.
  const int warpgroup = __shfl_sync(0xffffffff, threadIdx.x / 128, 0);
  const bool producer = threadIdx.x == kMathWarpgroups * 128;
  const int tiles = p.m_tiles * p.n_tiles;
  // Cluster ranks are consecutive along x: cluster c is CTAs kClusterN * c + rank.
  const int rank = kClusterN > 1 ? static_cast<int>(cute::block_rank_in_cluster()) : 0;
  const int first_tile = blockIdx.x / kClusterN, tile_stride = gridDim.x / kClusterN;

  if (producer) {
    cute::prefetch_tma_descriptor(&a_map);
    cute::prefetch_tma_descriptor(&b_map);
  }
  init_ring(s.full, s.empty, kBlockScaled ? 1 + 32 : 1, kMathWarps * kClusterN);
  // The peer multicasts into this CTA's stages and arrives on its barriers.
  if constexpr (kClusterN > 1) cute::cluster_sync();
  // The activations, the scales and the bias may be the previous grid's output.
  cutlass::arch::wait_on_dependent_grids();

  if (warpgroup == kMathWarpgroups) {
    // Producer: the it-th k-block of the CTA's tiles goes to stage
    // it % kStages, in the ring's (it / kStages)-th round.
    cutlass::arch::warpgroup_reg_dealloc<kProducerRegisters>();
    if (producer) {
      constexpr auto kEvictNormal = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_NORMAL);
      int it = 0;
      for (int tile = first_tile; tile < tiles; tile += tile_stride) {
        const TileBlocks blocks = tile_blocks<kClusterN>(p, tile, rank);
        for (int kb = 0; kb < p.k_blocks; ++kb, ++it) {
          const int stage = it % kStages;
          if (it >= kStages) Barrier::wait(&s.empty[stage], (it / kStages - 1) & 1);
          Barrier::arrive_and_expect_tx(&s.full[stage], kStageBytes);
          uint8_t* a_slice = s.a[stage] + rank * kSliceM * kBlockK;
          const int a_row = blocks.m * kBlockM + rank * kSliceM;
          if constexpr (kClusterN > 1)
            cute::SM90_TMA_LOAD_MULTICAST_2D::copy(&a_map, &s.full[stage], (1 << kClusterN) - 1,
                                                   kEvictNormal, a_slice, kb * kBlockK, a_row);
          else
            cute::SM90_TMA_LOAD_2D::copy(&a_map, &s.full[stage], kEvictNormal, a_slice,
                                         kb * kBlockK, a_row);
          cute::SM90_TMA_LOAD_2D::copy(&b_map, &s.full[stage], kEvictNormal, s.b[stage],
                                       kb * kBlockK, blocks.n * kBlockN);
        }
      }
      // The peer's math warps arrive on this CTA's `empty` barriers: its
      // shared memory stays until the last of those arrivals has landed.
      if constexpr (kClusterN > 1)
        for (int last = max(it - kStages, 0); last < it; ++last)
          Barrier::wait(&s.empty[last % kStages], (last / kStages) & 1);
    } else if (kBlockScaled && threadIdx.x / 32 == kMathWarps + 1) {
      // Block-scaled: the second producer warp copies the scales (cp.async),
      // lane i those of rows i + 32j, and arrives on the stage's `full`
      // barrier once its copies have landed. Past M and N it writes zeros
      // (a cluster's last tile lies past N where N has an odd number of
      // tiles), reading row 0 and weight block 0.
      using Copy = cute::SM80_CP_ASYNC_CACHEALWAYS_ZFILL<float>;
      const int lane = threadIdx.x % 32;
      int it = 0;
      for (int tile = first_tile; tile < tiles; tile += tile_stride) {
        const TileBlocks blocks = tile_blocks<kClusterN>(p, tile, rank);
        const bool n_in = blocks.n * kBlockN < p.out.n;
        for (int kb = 0; kb < p.k_blocks; ++kb, ++it) {
          const int stage = it % kStages;
          if (it >= kStages) Barrier::wait(&s.empty[stage], (it / kStages - 1) & 1);
#pragma unroll 1  // (the producer warpgroup has 40 registers)
          for (int j = 0; j < kBlockM / 32; ++j) {
            const int r = lane + 32 * j, m = blocks.m * kBlockM + r;
            const bool m_in = m < p.out.m;
            Copy::copy(p.block.a[kb * p.block.a_ld + (m_in ? m : 0)], s.scale_a[stage][r], m_in);
          }
          if (lane == 0)
            Copy::copy(p.block.b[(n_in ? blocks.n : 0) * p.block.b_ld + kb], s.scale_b[stage],
                       n_in);
          cutlass::arch::cpasync_barrier_arrive_noinc(&s.full[stage]);
        }
      }
    }
    return;
  }

  // Math warpgroup w: rows v * 128 + w * 64 + [0, 64) of the tile for wave v.
  // The WGMMA accumulator layout: warp q of the warpgroup holds rows
  // 16q + lane / 4 (+ 8), and for each 8-column block j columns
  // 8j + 2 (lane % 4) (+ 1): acc[4j + 2h + c] is row + 8h, column + c.
  cutlass::arch::warpgroup_reg_alloc<kMathRegisters>();
  const int lane = threadIdx.x % 32;
  const int warp_row = warpgroup * 64 + (threadIdx.x % 128) / 32 * 16 + lane / 4;
  int it = 0;
  for (int tile = first_tile; tile < tiles; tile += tile_stride) {
    const TileBlocks blocks = tile_blocks<kClusterN>(p, tile, rank);
    const int row = blocks.m * kBlockM + warp_row;
    float acc[kWaves][kAccum];
#pragma unroll
    for (int v = 0; v < kWaves; ++v)
#pragma unroll
      for (int i = 0; i < kAccum; ++i) acc[v][i] = 0.f;

    // The k-block of ring slot `slot` (the CTA's slot-th) has landed.
    const auto wait_landed = [&](int slot) {
      Barrier::wait(&s.full[slot % kStages], (slot / kStages) & 1);
    };
    // Block-scaled: the k-block's activation scales of rows row + v * 128 +
    // 8h and its weight scale, read before the WGMMAs are issued.
    const auto scales_of = [&](int slot, int v, float (&scale)[3]) {
      if constexpr (kBlockScaled) {
        const int stage = slot % kStages;
#pragma unroll
        for (int h = 0; h < 2; ++h)
          scale[h] = load_shared(&s.scale_a[stage][v * kWaveM + warp_row + 8 * h]);
        scale[2] = load_shared(&s.scale_b[stage]);
      }
    };
    // Wave v's four WGMMAs of the k-block into `step`, one batch.
    const auto issue = [&](int slot, int v, float (&step)[kAccum]) {
      const int stage = slot % kStages;
      const uint8_t* a_tile = s.a[stage] + (v * kWaveM + warpgroup * 64) * kBlockK;
#pragma unroll
      for (int i = 0; i < kAccum; ++i) cute::warpgroup_fence_operand(step[i]);
      cute::warpgroup_arrive();
#pragma unroll
      for (int k = 0; k < kBlockK / kMmaK; ++k)
        mma<Op>(smem_desc(a_tile + k * kMmaK), smem_desc(s.b[stage] + k * kMmaK), step, k > 0,
                std::make_index_sequence<kAccum>{});
      cute::warpgroup_commit_batch();
    };
    // The stage is read: one arrival per math warp, in every CTA of the cluster.
    const auto release = [&](int slot) {
      if (lane == 0)
#pragma unroll
        for (int cta = 0; cta < kClusterN; ++cta) {
          if constexpr (kClusterN > 1)
            Barrier::arrive(&s.empty[slot % kStages], cta, 1);
          else
            Barrier::arrive(&s.empty[slot % kStages]);
        }
    };
    // The promotion of a completed batch into wave v's sums. (ptxas places
    // the scale products among the batch's WGMMAs, where they wait for the
    // scales' loads: ld.shared keeps that wait within one WGMMA's time.)
    const auto promote = [&](int v, float (&step)[kAccum], const float (&scale)[3]) {
#pragma unroll
      for (int i = 0; i < kAccum; ++i) cute::warpgroup_fence_operand(step[i]);
      const float product[2] = {scale[0] * scale[2], scale[1] * scale[2]};
#pragma unroll
      for (int i = 0; i < kAccum; ++i) {
        if constexpr (kBlockScaled)
          acc[v][i] += step[i] * product[(i / 2) % 2];
        else
          acc[v][i] += step[i];
      }
    };

    if constexpr (kPipelined) {
      // One wave, two temporary accumulators: k-block kb + 1's WGMMAs are
      // issued before k-block kb is promoted, so this warpgroup's own
      // promotion never leaves the tensor cores without its work. Two
      // k-blocks per iteration keep the buffers' indices constant.
      float step[2][kAccum], scale[2][3];
      // k-block `slot` completes in step[b] (the next one issued into the
      // other buffer first, when there is one).
      const auto retire = [&](int slot, int b, bool next) {
        if (next) {
          wait_landed(slot + 1);
          scales_of(slot + 1, 0, scale[1 - b]);
          issue(slot + 1, 0, step[1 - b]);
          cute::warpgroup_wait<1>();
        } else {
          cute::warpgroup_wait<0>();
        }
        release(slot);
        promote(0, step[b], scale[b]);
      };
      wait_landed(it);
      scales_of(it, 0, scale[0]);
      issue(it, 0, step[0]);
      int kb = 0;
      for (; kb + 2 < p.k_blocks; kb += 2, it += 2) {
        retire(it, 0, true);
        retire(it + 1, 1, true);
      }
      // One or two k-blocks left, the first in flight in step[0].
      const bool two = kb + 1 < p.k_blocks;
      retire(it, 0, two);
      if (two) retire(it + 1, 1, false);
      it += two ? 2 : 1;
    } else {
      // One temporary accumulator that the waves share: each batch is
      // promoted once complete, while the other warpgroup's WGMMAs run.
      float step[kAccum];
      for (int kb = 0; kb < p.k_blocks; ++kb, ++it) {
        wait_landed(it);
        float scale[kWaves][3];
#pragma unroll
        for (int v = 0; v < kWaves; ++v) scales_of(it, v, scale[v]);
#pragma unroll
        for (int v = 0; v < kWaves; ++v) {
          issue(it, v, step);
          cute::warpgroup_wait<0>();
          if (v == kWaves - 1) release(it);
          promote(v, step, scale[v]);
        }
      }
    }
    if (tile + tile_stride >= tiles) cutlass::arch::launch_dependent_grids();  // our last MMA

    // The epilogue. Its scales and bias are loaded first, all at once: one
    // round trip to L2 per tile, not one per column pair (~7 us per tile
    // when each load waited for the last). Then per 32 columns: the four
    // lanes of a quad hold one row's 16 pairs of columns 8u + 2q (+ 1)
    // (u < 4, q = lane % 4); a transpose within the quad gives lane q the 8
    // columns 8q..8q + 7, one 16-byte store (N % 16 == 0: all in or all
    // out). Every lane shuffles, stores are guarded.
    const int q = lane % 4;
    float sa[kWaves][2], sb[kBlockN / 8][2], bias[kBlockN / 8][2];
#pragma unroll
    for (int v = 0; v < kWaves; ++v)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = row + v * kWaveM + 8 * h;
        sa[v][h] = kBlockScaled ? 1.f : m < p.out.m ? p.out.scale_a_of(m) : 0.f;
      }
    const bool with_bias = !kBlockScaled && p.out.bias != nullptr;  // one branch, not one per load
#pragma unroll
    for (int j = 0; j < kBlockN / 8; ++j)
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        const int n = blocks.n * kBlockN + 8 * j + 2 * q + c;
        sb[j][c] = kBlockScaled ? 1.f : n < p.out.n ? p.out.scale_b_of(n) : 0.f;
        bias[j][c] = 0.f;
      }
    if (with_bias) {
#pragma unroll
      for (int j = 0; j < kBlockN / 8; ++j)
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const int n = blocks.n * kBlockN + 8 * j + 2 * q + c;
          if (n < p.out.n) bias[j][c] = p.out.bias_of<ElementD>(n);
        }
    }
#pragma unroll
    for (int t = 0; t < kBlockN / 32; ++t) {
      uint32_t pairs[kWaves][2][4];  // [wave][row + 8h][u]: two rounded outputs each
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int j = 4 * t + u;
#pragma unroll
        for (int v = 0; v < kWaves; ++v)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            alignas(4) ElementD o[2];
#pragma unroll
            for (int c = 0; c < 2; ++c)
              o[c] = ElementD(sa[v][h] * (sb[j][c] * acc[v][4 * j + 2 * h + c]) + bias[j][c]);
            pairs[v][h][u] = *reinterpret_cast<const uint32_t*>(o);
          }
      }
#pragma unroll
      for (int v = 0; v < kWaves; ++v)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const uint4 cols = quad_transpose(pairs[v][h], q, lane);
          const int m = row + v * kWaveM + 8 * h, n = blocks.n * kBlockN + 32 * t + 8 * q;
          if (m < p.out.m && n < p.out.n)
            *reinterpret_cast<uint4*>(p.out.at<ElementD>(m, n)) = cols;
        }
    }
  }
}

}  // namespace custom_fp8::sm90::wave
