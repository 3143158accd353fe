// The shared-memory ring of our TMA-fed kernels (the split-K and the wave
// GEMM): stages of 128B-swizzled tiles, each with a `full` barrier (the
// producer's TMA bytes landed) and an `empty` one (every consumer warp is
// done with the stage).
#pragma once

#include <cstdint>

#include "cutlass/arch/barrier.h"

namespace custom_fp8::sm90 {

// The kernel's shared storage in dynamic shared memory, aligned to the
// 128B-swizzle atom (8 rows x 128 bytes): launch with sizeof(Storage) + 1024.
template <class Storage>
__device__ __forceinline__ Storage& swizzle_aligned(uint8_t* smem_raw) {
  return *reinterpret_cast<Storage*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) &
                                     ~uintptr_t(1023));
}

// Thread 0 initializes the ring's barriers (producer_arrivals per `full`
// phase: the TMA thread's, and any loads' that arrive on it; consumer_warps
// arrivals per `empty` phase); the block waits for it.
template <int kStages>
__device__ __forceinline__ void init_ring(uint64_t (&full)[kStages], uint64_t (&empty)[kStages],
                                          int producer_arrivals, int consumer_warps) {
  using Barrier = cutlass::arch::ClusterTransactionBarrier;
  if (threadIdx.x == 0) {
    for (int i = 0; i < kStages; ++i) {
      Barrier::init(&full[i], producer_arrivals);
      Barrier::init(&empty[i], consumer_warps);
    }
    cutlass::arch::fence_barrier_init();
  }
  __syncthreads();
}

}  // namespace custom_fp8::sm90
