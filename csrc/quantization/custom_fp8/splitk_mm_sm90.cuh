// The split-K decode GEMM (sm_90a): out[M, N] = scale_a * (scale_b * (a @ b)) + bias
// for few tokens, where the layer is a weight stream.
//
// Why a kernel of our own: the CUTLASS swap-AB kernels give each CTA 64 weight
// rows over the whole of K, so N = 4096 makes 64 CTAs on 132 SMs and half the
// HBM bandwidth goes unused; and each WGMMA promotion waits for every MMA in
// flight. Here
//   - a thread-block cluster of S CTAs shares one 64-row tile, each CTA
//     streaming 1/S of K (S from the shape, splitk_mm_sm90.cu), and the
//     partial sums are added through distributed shared memory in rank order
//     0, 1, ..., S-1: a fixed order, so the result is the same on every run,
//     with no workspace, counter or memset (nothing to stall PDL);
//   - one producer warp streams the weight tile and the tokens' activations
//     with TMA, 256 of K per stage (two 128-byte swizzle spans), through a
//     ring of 6-8 stages: ~150-200 KB in flight per CTA, one CTA per SM;
//   - four math warps each own 16 weight rows and compute out^T with
//     mma.sync m16n8k32 (e4m3): the weight is operand A, 8 tokens are one
//     n-tile of operand B. Each k-block's four MMAs chain in the tensor core,
//     then their sum is added to float32 accumulators on the CUDA cores:
//     promotion every 128 of K, as DeepGEMM. An MMA of mma.sync is synchronous
//     in its warp, so promotion never drains a pipeline: the other warps'
//     MMAs and the TMA loads go on meanwhile;
//   - PDL: the producer loads the first weight k-blocks into shared memory
//     and prefetches further ones into L2 before it waits on the grid it
//     depends on (the weight is never written by it); activations and scales
//     are read after the wait.
// Tokens come in groups of kTokens (8, 16, 32 or 64: one to eight n-tiles),
// one group per grid row; TMA zero-fills what lies past M, N and K.
#pragma once

#include <cuda.h>

#include <algorithm>
#include <cstdint>

#include "cute/arch/cluster_sm90.hpp"
#include "cute/arch/copy_sm90_tma.hpp"
#include "cute/arch/mma_sm89.hpp"
#include "cutlass/arch/barrier.h"
#include "cutlass/arch/grid_dependency_control.h"
#include "cutlass/numeric_types.h"

#include "scaled_output_sm90.cuh"
#include "tma_ring_sm90.cuh"

namespace custom_fp8::sm90::splitk {

constexpr int kRows = 64;         // weight rows (output columns) per CTA
constexpr int kBlockK = 128;      // one 128-byte swizzle span of K: one TMA box, one promotion
constexpr int kBlocksPerStage = 2;  // 256 of K per stage, as CUTLASS's 256-deep swap-AB tiles
constexpr int kMathWarps = kRows / 16;
constexpr int kThreads = (kMathWarps + 1) * 32;  // + the producer warp
constexpr int kMaxSplits = 8;     // the portable cluster size

struct Params {
  ScaledOutput out;
  int k_blocks;            // ceil(K / kBlockK)
  int k_blocks_per_split;  // per cluster rank; rank r owns [r * this, (r + 1) * this)
  int prefetch_k_blocks;   // weight k-blocks past the first stages' prefetched into L2
};

// Stages: as many as keep the ring near 200 KB (one CTA per SM, the
// memory-level parallelism the HBM needs: ~2x CUTLASS's swap-AB kernels'
// bytes in flight per SM once the K split doubles the CTAs).
template <int kTokens>
constexpr int kStages = std::min(8, (200 << 10) / ((kRows + kTokens) * kBlockK * kBlocksPerStage));

template <int kTokens>
struct alignas(1024) SharedStorage {  // 1024: the 128B-swizzle atom (8 rows x 128 bytes)
  static constexpr int kStages = splitk::kStages<kTokens>;
  struct Stages {
    uint8_t weight[kStages][kBlocksPerStage][kRows * kBlockK];
    uint8_t act[kStages][kBlocksPerStage][kTokens * kBlockK];
  };
  union {
    Stages stages;
    float partial[kTokens][kRows];  // the CTA's sums, read by its cluster after the main loop
  };
  uint64_t full[kStages];   // TMA bytes landed
  uint64_t empty[kStages];  // every math warp done with the stage
};

template <int kTokens>
constexpr int kSmemBytes = sizeof(SharedStorage<kTokens>) + 1024;  // + the alignment slack

// 16 bytes of a TMA-written tile (rows of 128 bytes, SWIZZLE_128B): chunk c of
// row r, into 4 words. (ld.shared: through a generic pointer the compiler
// emits generic loads.)
__device__ __forceinline__ void load_chunk(uint32_t* words, const uint8_t* tile, int row, int chunk) {
  const auto addr = static_cast<uint32_t>(
      __cvta_generic_to_shared(tile + row * kBlockK + ((chunk ^ (row & 7)) << 4)));
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];"
               : "=r"(words[0]), "=r"(words[1]), "=r"(words[2]), "=r"(words[3])
               : "r"(addr));
}

__device__ __forceinline__ float4 load_remote(const float* local, uint32_t rank) {
  uint32_t remote;
  float4 v;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;"
               : "=r"(remote)
               : "r"(static_cast<uint32_t>(__cvta_generic_to_shared(local))), "r"(rank));
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote));
  return v;
}

template <class ElementD, int kTokens>
__global__ void __launch_bounds__(kThreads) splitk_mm_kernel(const __grid_constant__ CUtensorMap weight_map,
                                                             const __grid_constant__ CUtensorMap act_map,
                                                             const Params p) {
  static_assert(kTokens % 8 == 0 && kTokens <= 64, "one to eight 8-token n-tiles");
  using Barrier = cutlass::arch::ClusterTransactionBarrier;
  constexpr int kNTiles = kTokens / 8;
  constexpr int kStages = SharedStorage<kTokens>::kStages;
  constexpr uint32_t kBlockBytes = (kRows + kTokens) * kBlockK;

  extern __shared__ uint8_t smem_raw[];
  auto& s = swizzle_aligned<SharedStorage<kTokens>>(smem_raw);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t rank = cute::block_rank_in_cluster();
  const uint32_t splits = cute::cluster_shape().x;
  const int row0 = (blockIdx.x / splits) * kRows;  // the tile's first weight row
  const int token0 = blockIdx.y * kTokens;
  const int kb0 = rank * p.k_blocks_per_split;
  const int k_blocks = max(0, min(p.k_blocks - kb0, p.k_blocks_per_split));
  const int steps = (k_blocks + kBlocksPerStage - 1) / kBlocksPerStage;  // the last may hold one
  auto blocks_in = [&](int step) { return min(kBlocksPerStage, k_blocks - step * kBlocksPerStage); };

  init_ring(s.full, s.empty, /*producer_arrivals=*/1, kMathWarps);

  if (warp == kMathWarps) {
    // Producer. The weight is read once: evict it first, keep the activations.
    if (lane == 0) {
      using Load = cute::SM90_TMA_LOAD_2D;
      constexpr auto kEvictFirst = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_FIRST);
      constexpr auto kEvictLast = static_cast<uint64_t>(cute::TMA::CacheHintSm90::EVICT_LAST);
      cute::prefetch_tma_descriptor(&weight_map);
      cute::prefetch_tma_descriptor(&act_map);
      auto load_weight = [&](int step, int stage) {
        for (int b = 0; b < blocks_in(step); ++b)
          Load::copy(&weight_map, &s.full[stage], kEvictFirst, s.stages.weight[stage][b],
                     (kb0 + step * kBlocksPerStage + b) * kBlockK, row0);
      };
      auto load_act = [&](int step, int stage) {
        for (int b = 0; b < blocks_in(step); ++b)
          Load::copy(&act_map, &s.full[stage], kEvictLast, s.stages.act[stage][b],
                     (kb0 + step * kBlocksPerStage + b) * kBlockK, token0);
      };
      const int first = min(steps, kStages);
      for (int i = 0; i < first; ++i) {
        Barrier::arrive_and_expect_tx(&s.full[i], blocks_in(i) * kBlockBytes);
        load_weight(i, i);
      }
      for (int kb = first * kBlocksPerStage; kb < min(k_blocks, first * kBlocksPerStage + p.prefetch_k_blocks); ++kb)
        Load::PREFETCH::copy(&weight_map, (kb0 + kb) * kBlockK, row0);
      cutlass::arch::wait_on_dependent_grids();  // the activations are the previous grid's
      for (int i = 0; i < first; ++i) load_act(i, i);
      for (int i = kStages; i < steps; ++i) {
        const int stage = i % kStages;
        Barrier::wait(&s.empty[stage], (i / kStages - 1) & 1);
        Barrier::arrive_and_expect_tx(&s.full[stage], blocks_in(i) * kBlockBytes);
        load_weight(i, stage);
        load_act(i, stage);
      }
    }
    __syncwarp();
    cute::cluster_sync();  // the cluster's partial sums are written
    cute::cluster_sync();  // and read: the shared memory may go
    return;
  }

  // Math warps: thread (g, t) of the mma fragments (g = lane / 4, t = lane % 4)
  // holds weight rows r and r + 8 and token g of each n-tile. K is permuted
  // inside a k-block (the dot product does not care, A and B agree): thread t
  // takes bytes [32t, 32t + 32), i.e. 16-byte chunks 2t and 2t + 1, which
  // makes every 8-lane phase of the shared-memory loads conflict-free under
  // the swizzle; word 2j of them feeds MMA j's k = 4t..4t+3, word 2j + 1 its
  // k = 16+4t..16+4t+3.
  cutlass::arch::wait_on_dependent_grids();
  const int g = lane / 4, t = lane % 4;
  const int r = warp * 16 + g;
  float acc[kNTiles][4] = {};
  auto mma_block = [&](const uint8_t* w, const uint8_t* x) {
    uint32_t a_lo[8], a_hi[8];  // rows r, r + 8
    load_chunk(a_lo, w, r, 2 * t);
    load_chunk(a_lo + 4, w, r, 2 * t + 1);
    load_chunk(a_hi, w, r + 8, 2 * t);
    load_chunk(a_hi + 4, w, r + 8, 2 * t + 1);
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
      uint32_t b[8];
      load_chunk(b, x, nt * 8 + g, 2 * t);
      load_chunk(b + 4, x, nt * 8 + g, 2 * t + 1);
      float d[2][4] = {};  // two independent chains of two MMAs: half the dependent latency
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float* e = d[j % 2];
        cute::SM89_16x8x32_F32E4M3E4M3F32_TN::fma(e[0], e[1], e[2], e[3], a_lo[2 * j],
                                                   a_hi[2 * j], a_lo[2 * j + 1], a_hi[2 * j + 1],
                                                   b[2 * j], b[2 * j + 1], e[0], e[1], e[2], e[3]);
      }
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[nt][c] += d[0][c] + d[1][c];  // the promotion
    }
  };
  for (int i = 0; i < steps; ++i) {
    const int stage = i % kStages;
    Barrier::wait(&s.full[stage], (i / kStages) & 1);
    for (int b = 0; b < blocks_in(i); ++b) mma_block(s.stages.weight[stage][b], s.stages.act[stage][b]);
    __syncwarp();
    if (lane == 0) Barrier::arrive(&s.empty[stage]);
  }
  cutlass::arch::launch_dependent_grids();

  // d[0..1]: row r, tokens 2t and 2t + 1 of the n-tile; d[2..3]: row r + 8.
  cutlass::arch::NamedBarrier::sync(kMathWarps * 32, 1);  // every warp is done with the stages
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt) {
    s.partial[nt * 8 + 2 * t][r] = acc[nt][0];
    s.partial[nt * 8 + 2 * t + 1][r] = acc[nt][1];
    s.partial[nt * 8 + 2 * t][r + 8] = acc[nt][2];
    s.partial[nt * 8 + 2 * t + 1][r + 8] = acc[nt][3];
  }
  cute::cluster_sync();

  // Rank q of S adds up, scales and stores a 1/S slice of the tile, four
  // consecutive output columns of one token per thread, summing the ranks'
  // partials in rank order.
  constexpr int kQuads = kTokens * kRows / 4;
  const int quads = kQuads / splits;
  for (int v = threadIdx.x; v < quads; v += kMathWarps * 32) {
    const int e = (rank * quads + v) * 4;
    const int token = e / kRows, col = e % kRows;
    float4 sum = load_remote(&s.partial[token][col], 0);
    for (uint32_t q = 1; q < splits; ++q) {
      const float4 part = load_remote(&s.partial[token][col], q);
      sum.x += part.x, sum.y += part.y, sum.z += part.z, sum.w += part.w;
    }
    const int m = token0 + token, n = row0 + col;
    if (m >= p.out.m || n >= p.out.n) continue;  // N % 16 == 0: a quad is all in or all out
    const float sa = p.out.scale_a_of(m);
    const float v4[4] = {sum.x, sum.y, sum.z, sum.w};
    alignas(8) ElementD o[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const float sb = p.out.scale_b_of(n + j);
      const float bias = p.out.bias_of<ElementD>(n + j);
      o[j] = ElementD(sa * (sb * v4[j]) + bias);
    }
    *reinterpret_cast<uint2*>(p.out.at<ElementD>(m, n)) =
        *reinterpret_cast<const uint2*>(o);
  }
  cute::cluster_sync();
}

}  // namespace custom_fp8::sm90::splitk
