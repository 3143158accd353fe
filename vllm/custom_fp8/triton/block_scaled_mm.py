# SPDX-License-Identifier: Apache-2.0
"""Triton block-scaled FP8 GEMM (DeepSeek-style 1x128 activation groups,
128x128 weight blocks):

    out[m, n] = sum_kb scale_a[m, kb] * scale_b[kb, n // 128] * (a[m, kb] @ b[kb, n])

Each 128-wide K step is one MMA into a fresh float32 tile, scaled and added
to the float32 accumulator (the order of cpu.py); the result is rounded once
to out's dtype.
"""

import torch
import triton
import triton.language as tl

from .. import _checks
from ..numerics import BLOCK_K, BLOCK_N
from .scaled_mm import store_tile, tile_coords, tile_offsets

# One scale of a and of b per K step: the K tile is the scale block.
_BLOCK_K = tl.constexpr(BLOCK_K)
_SCALE_BLOCK_N = tl.constexpr(BLOCK_N)


@triton.jit
def _block_scaled_mm_kernel(out_ptr, a_ptr, b_ptr, scale_a_ptr, scale_b_ptr,
                            M, N, K, a_row_stride, b_col_stride,
                            scale_a_row_stride, scale_a_k_stride,
                            scale_b_k_stride, scale_b_n_stride,
                            BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    pid_m, pid_n = tile_coords(M, N, BLOCK_M, BLOCK_N)
    offs_m, offs_n = tile_offsets(pid_m, pid_n, M, N, BLOCK_M, BLOCK_N)
    offs_k = tl.arange(0, _BLOCK_K)
    a_ptrs = a_ptr + offs_m.to(tl.int64)[:, None] * a_row_stride + offs_k[None, :]
    b_ptrs = b_ptr + offs_k[:, None] + offs_n.to(tl.int64)[None, :] * b_col_stride
    scale_a_ptrs = scale_a_ptr + offs_m * scale_a_row_stride
    # BLOCK_N divides 128, so the whole tile lies in one column block of b.
    scale_b_ptrs = scale_b_ptr + (pid_n * BLOCK_N // _SCALE_BLOCK_N) * scale_b_n_stride

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for _ in range(0, K, _BLOCK_K):
        # A fresh float32 tile per 128-deep step: the scaling is also the
        # float32 promotion of the FP8 tensor cores' low-precision sums.
        partial = tl.dot(tl.load(a_ptrs), tl.load(b_ptrs))
        acc += partial * tl.load(scale_a_ptrs)[:, None] * tl.load(scale_b_ptrs)
        a_ptrs += _BLOCK_K
        b_ptrs += _BLOCK_K
        scale_a_ptrs += scale_a_k_stride
        scale_b_ptrs += scale_b_k_stride
    store_tile(out_ptr, acc, pid_m, pid_n, M, N, BLOCK_M, BLOCK_N)


def _tile_config(m: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) for M rows; BLOCK_N divides 128."""
    if m <= 16:
        return 16, 64, 4, 5
    if m <= 32:
        return 32, 64, 4, 5
    if m <= 64:
        return 64, 64, 4, 4
    return 128, 128, 8, 3


def block_scaled_mm(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                    scale_a: torch.Tensor, scale_b: torch.Tensor, config: int = -1) -> None:
    """`config` selects a CUDA-library kernel; the Triton tiles come from M."""
    _checks.check_block_scaled_mm(out, a, b, scale_a, scale_b)
    m, k = a.shape
    n = b.shape[1]
    if m == 0:
        return
    block_m, block_n, num_warps, num_stages = _tile_config(m)
    grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
    _block_scaled_mm_kernel[grid](
        out, a, b, scale_a, scale_b, m, n, k, a.stride(0), b.stride(1),
        scale_a.stride(0), scale_a.stride(1), scale_b.stride(0), scale_b.stride(1),
        BLOCK_M=block_m, BLOCK_N=block_n, num_warps=num_warps, num_stages=num_stages)
