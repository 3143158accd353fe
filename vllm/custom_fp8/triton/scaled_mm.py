# SPDX-License-Identifier: Apache-2.0
"""Triton FP8 GEMM with the dequant fused into the epilogue:
out[M, N] = scale_a * (scale_b * (a @ b)) + bias, in float32, rounded once
to out's dtype. scale_a is per-tensor or per-token, scale_b per-tensor or
per-channel (the epilogue order of cpu.py and the CUDA kernel).

Tile sizes come from a fixed table by M (no autotuning: the same shapes
always run the same kernel, so results are deterministic run to run).
"""

import torch
import triton
import triton.language as tl

from .. import _checks

# Consecutive programs sweep GROUP_M row tiles before moving along N, so a
# band of `a` rows and a band of `b` columns stay in L2 together.
GROUP_M = tl.constexpr(8)
# @triton.jit reads the same knob when it decorates, so this says whether the
# kernels run in Triton's CPU interpreter.
_INTERPRET = tl.constexpr(triton.knobs.runtime.interpret)


@triton.jit
def _round_to_bf16_grid(x):
    """Rounds float32 x to the nearest bfloat16 value, ties to even.

    The interpreter converts float32 -> bfloat16 by truncation (the GPU
    rounds to nearest even), so under the interpreter the store rounds here
    first and the conversion then only has exact values to store. The sign
    is the top bit, so rounding the pattern as an integer rounds |x|.
    """
    bits = x.to(tl.uint32, bitcast=True)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.to(tl.float32, bitcast=True)


@triton.jit
def tile_coords(M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(pid_m, pid_n) of this program in the grouped order described above."""
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    programs_per_group = GROUP_M * num_pid_n
    first_pid_m = (pid // programs_per_group) * GROUP_M
    group_rows = tl.minimum(num_pid_m - first_pid_m, GROUP_M)
    pid_m = first_pid_m + (pid % programs_per_group) % group_rows
    pid_n = (pid % programs_per_group) // group_rows
    return pid_m, pid_n


@triton.jit
def tile_offsets(pid_m, pid_n, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Row and column indices of the tile, wrapped into [0, M) and [0, N) so
    that loads need no mask; the store masks the wrapped (repeated) ones."""
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    return offs_m, offs_n


@triton.jit
def store_tile(out_ptr, acc, pid_m, pid_n, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Rounds the float32 tile to out's dtype (nearest even) and stores its in-bounds part."""
    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    out_ptrs = out_ptr + rows.to(tl.int64)[:, None] * N + cols[None, :]
    if _INTERPRET and out_ptr.dtype.element_ty == tl.bfloat16:
        acc = _round_to_bf16_grid(acc)
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty),
             mask=(rows < M)[:, None] & (cols < N)[None, :])


@triton.jit
def _scaled_mm_kernel(out_ptr, a_ptr, b_ptr, scale_a_ptr, scale_b_ptr, bias_ptr,
                      M, N, K, a_row_stride, b_col_stride,
                      A_PER_TOKEN: tl.constexpr, B_PER_CHANNEL: tl.constexpr,
                      HAS_BIAS: tl.constexpr, EVEN_K: tl.constexpr,
                      BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m, pid_n = tile_coords(M, N, BLOCK_M, BLOCK_N)
    offs_m, offs_n = tile_offsets(pid_m, pid_n, M, N, BLOCK_M, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    # a is row-major; b is column-major (K contiguous), as the FP8 MMA wants both.
    a_ptrs = a_ptr + offs_m.to(tl.int64)[:, None] * a_row_stride + offs_k[None, :]
    b_ptrs = b_ptr + offs_k[:, None] + offs_n.to(tl.int64)[None, :] * b_col_stride

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        if EVEN_K:
            a = tl.load(a_ptrs)
            b = tl.load(b_ptrs)
        else:
            k_left = K - k
            a = tl.load(a_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(b_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        # On sm_90 the FP8 tensor cores add into the accumulator with ~13-bit
        # precision; promoting to float32 every 128-deep k-tile (Triton's
        # default there: never) bounds that error as the CUDA kernel does.
        acc = tl.dot(a, b, acc, max_num_imprecise_acc=BLOCK_K)
        a_ptrs += BLOCK_K
        b_ptrs += BLOCK_K

    if B_PER_CHANNEL:
        acc = tl.load(scale_b_ptr + offs_n)[None, :] * acc
    else:
        acc = tl.load(scale_b_ptr) * acc
    if A_PER_TOKEN:
        acc = tl.load(scale_a_ptr + offs_m)[:, None] * acc
    else:
        acc = tl.load(scale_a_ptr) * acc
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_n).to(tl.float32)[None, :]
    store_tile(out_ptr, acc, pid_m, pid_n, M, N, BLOCK_M, BLOCK_N)


def _tile_config(m: int) -> tuple[int, int, int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_K, num_warps, num_stages) for M rows: small-M
    (decode) tiles keep more programs over N; large M uses 128 x 128 tiles."""
    if m <= 16:
        return 16, 64, 128, 4, 5
    if m <= 32:
        return 32, 64, 128, 4, 5
    if m <= 64:
        return 64, 64, 128, 4, 4
    return 128, 128, 128, 8, 4


def scaled_mm(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scale_a: torch.Tensor,
              scale_b: torch.Tensor, bias: torch.Tensor | None, config: int = -1) -> None:
    """`config` selects a CUDA-library kernel; the Triton tiles come from M."""
    _checks.check_scaled_mm(out, a, b, scale_a, scale_b, bias)
    m, k = a.shape
    n = b.shape[1]
    if m == 0:
        return
    block_m, block_n, block_k, num_warps, num_stages = _tile_config(m)
    grid = (triton.cdiv(m, block_m) * triton.cdiv(n, block_n),)
    _scaled_mm_kernel[grid](
        out, a, b, scale_a, scale_b, out if bias is None else bias,
        m, n, k, a.stride(0), b.stride(1),
        A_PER_TOKEN=scale_a.numel() > 1, B_PER_CHANNEL=scale_b.numel() > 1,
        HAS_BIAS=bias is not None, EVEN_K=k % block_k == 0,
        BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_K=block_k,
        num_warps=num_warps, num_stages=num_stages)
