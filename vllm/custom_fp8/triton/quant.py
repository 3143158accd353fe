# SPDX-License-Identifier: Apache-2.0
"""Triton FP8 activation quant: static and dynamic per-tensor, dynamic
per-token and per-token-group (1 x 128).

Codes and scales are bit-identical to cpu.py (and so to the CUDA kernels and
upstream vLLM's CUDA ops); docs/numerics.md explains each rule. What that
takes in Triton:
  * every float32 division is `tl.math.div_rn` (IEEE round-to-nearest);
    Triton's `/` on float32 is an approximate division on the GPU;
  * NaN is handled with explicit `tl.where`: `tl.minimum`/`tl.maximum` ignore
    NaN on the GPU but propagate it in the CPU interpreter (numpy);
  * the float32 -> e4m3 conversion rounds to nearest even after the clamp.
"""

import torch
import triton
import triton.language as tl

from .. import _checks
from ..numerics import FP8_MAX, GROUP_EPS, PER_TOKEN_MIN_SCALE

# @triton.jit reads the same knob when it decorates, so this says whether the
# kernels below run in Triton's CPU interpreter.
_INTERPRET = tl.constexpr(triton.knobs.runtime.interpret)
_FP8_MAX = tl.constexpr(FP8_MAX)
_PER_TOKEN_MIN_SCALE = tl.constexpr(PER_TOKEN_MIN_SCALE)
_GROUP_EPS = tl.constexpr(GROUP_EPS)
# Smallest normal e4m3 magnitude; below it the e4m3 spacing is 2**-9.
_E4M3_MIN_NORMAL = tl.constexpr(2.0**-6)
# float32 spacing at 2**14 is 2**-9: adding it rounds to the subnormal grid.
_E4M3_SUBNORMAL_ROUNDER = tl.constexpr(2.0**14)

# Elements one program of the elementwise kernels touches: 2-4 16-byte loads
# per thread at 4 warps.
_TILE_ELEMS = 2048
# Largest K chunk a row program loads at once (the row kernels loop beyond).
_MAX_ROW_BLOCK = 4096
# Groups of 128 one per-token-group program quantizes.
_GROUPS_PER_PROGRAM = 8


@triton.jit
def _round_to_e4m3_grid(q):
    """Rounds float32 |q| <= 448 to the nearest e4m3 value, ties to even.

    The interpreter's float32 -> fp8 conversion rounds ties away from zero and
    ignores the bits below the cut-off, so under the interpreter the kernels
    round here first and the conversion then only has exact values to store.
    """
    bits = q.to(tl.uint32, bitcast=True)
    sign = bits & 0x80000000
    mag_bits = bits ^ sign
    # Normal range: round the float32 pattern to 3 mantissa bits (drop 20 bits,
    # ties to even); a carry into the exponent is the correct round-up.
    normal = (mag_bits + 0x7FFFF + ((mag_bits >> 20) & 1)) & 0xFFF00000
    mag = mag_bits.to(tl.float32, bitcast=True)
    subnormal = ((mag + _E4M3_SUBNORMAL_ROUNDER) - _E4M3_SUBNORMAL_ROUNDER).to(
        tl.uint32, bitcast=True)
    rounded = tl.where(mag < _E4M3_MIN_NORMAL, subnormal, normal) | sign
    return rounded.to(tl.float32, bitcast=True)


@triton.jit
def _to_e4m3(q):
    """float32 in [-448, 448] (NaN already clamped) -> e4m3, round to nearest even."""
    if _INTERPRET:
        q = _round_to_e4m3_grid(q)
    return q.to(tl.float8e4nv)


@triton.jit
def _clamp_nan_to_max(y):
    """fmaxf(-448, fminf(y, 448)): fminf ignores NaN, so NaN becomes +448."""
    clamped = tl.minimum(tl.maximum(y, -_FP8_MAX), _FP8_MAX)
    return tl.where(y != y, _FP8_MAX, clamped)


@triton.jit
def _clamp_nan_to_min(y):
    """fminf(fmaxf(y, -448), 448), the group kernel's order: NaN becomes -448."""
    clamped = tl.minimum(tl.maximum(y, -_FP8_MAX), _FP8_MAX)
    return tl.where(y != y, -_FP8_MAX, clamped)


@triton.jit
def _nan_ignoring_abs(x):
    """|x| with NaN as 0, so a max over it starting at 0 ignores NaN as fmaxf does."""
    return tl.where(x != x, 0.0, tl.abs(x))


@triton.jit
def _per_token_scale(row_amax, scale_ub_ptr, HAS_SCALE_UB: tl.constexpr):
    """max(fminf(amax, ub) / 448, 1 / (448 * 512)); fminf: a NaN bound leaves
    the amax as it is."""
    if HAS_SCALE_UB:
        scale_ub = tl.load(scale_ub_ptr)
        row_amax = tl.where(scale_ub != scale_ub, row_amax, tl.minimum(row_amax, scale_ub))
    return tl.maximum(tl.math.div_rn(row_amax, _FP8_MAX), _PER_TOKEN_MIN_SCALE)


@triton.jit
def _group_scales(x):
    """The scale of each row of x [groups, 128]: max(eps, absmax) / 448."""
    return tl.math.div_rn(tl.maximum(tl.max(_nan_ignoring_abs(x), 1), _GROUP_EPS), _FP8_MAX)


@triton.jit
def _absmax_kernel(scale_ptr, in_ptr, M, K, in_row_stride,
                   BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """scale = max(scale, absmax(rows) / 448) over this program's rows; scale starts at 0."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ptrs = in_ptr + rows.to(tl.int64)[:, None] * in_row_stride
    amax = tl.zeros((BLOCK_M, BLOCK_K), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        cols = k + tl.arange(0, BLOCK_K)
        mask = (rows < M)[:, None] & (cols < K)[None, :]
        x = tl.load(row_ptrs + cols[None, :], mask=mask, other=0.0).to(tl.float32)
        amax = tl.maximum(amax, _nan_ignoring_abs(x))
    # Division by 448 is monotonic, so the max of the quotients is the scale.
    # Non-negative floats order like their bit patterns: the float atomic max
    # is exact.
    tl.atomic_max(scale_ptr, tl.math.div_rn(tl.max(tl.max(amax, 1), 0), _FP8_MAX))


@triton.jit
def _per_tensor_quant_kernel(out_ptr, in_ptr, scale_ptr, M, M_OUT, K, in_row_stride,
                             BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
    """codes = RNE(clamp(x * (1 / scale))); rows M..M_OUT-1 are zero padding."""
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    is_input_row = (rows < M)[:, None]
    in_bounds = (rows < M_OUT)[:, None] & (cols < K)[None, :]
    x = tl.load(in_ptr + rows.to(tl.int64)[:, None] * in_row_stride + cols[None, :],
                mask=in_bounds & is_input_row, other=0.0).to(tl.float32)
    inv_scale = tl.math.div_rn(1.0, tl.load(scale_ptr))
    # Padding rows are zero codes, not 0 * inv_scale (NaN for a zero scale).
    q = tl.where(is_input_row, _clamp_nan_to_max(x * inv_scale), 0.0)
    tl.store(out_ptr + rows.to(tl.int64)[:, None] * K + cols[None, :], _to_e4m3(q),
             mask=in_bounds)


@triton.jit
def _per_token_quant_kernel(out_ptr, scale_ptr, in_ptr, scale_ub_ptr, M, K, in_row_stride,
                            HAS_SCALE_UB: tl.constexpr, BLOCK_K: tl.constexpr):
    """One program per row of out: scale = max(fminf(amax, ub) / 448, min scale),
    codes = RNE(clamp(x / scale)). A padding row (row >= M) reads as zeros, which
    gives the zero codes and the minimum scale it must have."""
    row = tl.program_id(0).to(tl.int64)
    in_row = in_ptr + row * in_row_stride
    out_row = out_ptr + row * K
    is_input_row = row < M

    amax = tl.zeros((BLOCK_K,), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        cols = k + tl.arange(0, BLOCK_K)
        x = tl.load(in_row + cols, mask=(cols < K) & is_input_row, other=0.0).to(tl.float32)
        amax = tl.maximum(amax, _nan_ignoring_abs(x))
    scale = _per_token_scale(tl.max(amax, 0), scale_ub_ptr, HAS_SCALE_UB)
    tl.store(scale_ptr + row, scale)

    for k in range(0, K, BLOCK_K):
        cols = k + tl.arange(0, BLOCK_K)
        x = tl.load(in_row + cols, mask=(cols < K) & is_input_row, other=0.0).to(tl.float32)
        q = _clamp_nan_to_max(tl.math.div_rn(x, scale))
        tl.store(out_row + cols, _to_e4m3(q), mask=cols < K)


@triton.jit
def _per_token_group_quant_kernel(out_ptr, scale_ptr, in_ptr, M, K, in_row_stride,
                                  scale_row_stride, scale_group_stride,
                                  GROUP_SIZE: tl.constexpr, GROUPS: tl.constexpr):
    """GROUPS consecutive groups of one row: scale = max(eps, amax) / 448,
    codes = RNE(fminf(fmaxf(x / scale, -448), 448)). A padding row reads as
    zeros, which gives the zero codes and the eps / 448 scale it must have."""
    row = tl.program_id(0).to(tl.int64)
    groups = tl.program_id(1) * GROUPS + tl.arange(0, GROUPS)
    cols = groups[:, None] * GROUP_SIZE + tl.arange(0, GROUP_SIZE)[None, :]
    in_row_group = cols < K
    x = tl.load(in_ptr + row * in_row_stride + cols, mask=in_row_group & (row < M),
                other=0.0).to(tl.float32)
    scale = _group_scales(x)
    tl.store(scale_ptr + row * scale_row_stride + groups * scale_group_stride, scale,
             mask=groups * GROUP_SIZE < K)
    q = _clamp_nan_to_min(tl.math.div_rn(x, scale[:, None]))
    tl.store(out_ptr + row * K + cols, _to_e4m3(q), mask=in_row_group)


def _row_block(k: int) -> int:
    return min(triton.next_power_of_2(k), _MAX_ROW_BLOCK)


def _tile(k: int) -> tuple[int, int]:
    """(BLOCK_M, BLOCK_K) of the elementwise kernels: short rows share a program."""
    block_k = min(triton.next_power_of_2(k), _TILE_ELEMS)
    return _TILE_ELEMS // block_k, block_k


def _quant_per_tensor(out: torch.Tensor, input: torch.Tensor, scale: torch.Tensor) -> None:
    m, k = input.shape
    block_m, block_k = _tile(k)
    grid = (triton.cdiv(out.shape[0], block_m), triton.cdiv(k, block_k))
    _per_tensor_quant_kernel[grid](out, input, scale, m, out.shape[0], k, input.stride(0),
                                   BLOCK_M=block_m, BLOCK_K=block_k)


def static_scaled_fp8_quant(out: torch.Tensor, input: torch.Tensor, scale: torch.Tensor) -> None:
    _checks.check_static_quant(out, input, scale)
    if out.shape[0] == 0:
        return
    _quant_per_tensor(out, input, scale)


def dynamic_scaled_fp8_quant(out: torch.Tensor, input: torch.Tensor, scale: torch.Tensor) -> None:
    _checks.check_dynamic_quant(out, input, scale)
    # The atomic max starts from 0; an empty input keeps scale 0, as cpu.py.
    scale.zero_()
    if out.shape[0] == 0:
        return
    m, k = input.shape
    if m > 0:
        block_m, block_k = _tile(k)
        _absmax_kernel[(triton.cdiv(m, block_m),)](scale, input, m, k, input.stride(0),
                                                   BLOCK_M=block_m, BLOCK_K=block_k)
    _quant_per_tensor(out, input, scale)


def dynamic_per_token_scaled_fp8_quant(out: torch.Tensor, input: torch.Tensor,
                                       scale: torch.Tensor,
                                       scale_ub: torch.Tensor | None) -> None:
    _checks.check_per_token_quant(out, input, scale, scale_ub)
    if out.shape[0] == 0:
        return
    m, k = input.shape
    block_k = _row_block(k)
    _per_token_quant_kernel[(out.shape[0],)](
        out, scale, input, scale if scale_ub is None else scale_ub, m, k, input.stride(0),
        HAS_SCALE_UB=scale_ub is not None, BLOCK_K=block_k,
        num_warps=8 if block_k >= 4096 else 4)


def per_token_group_fp8_quant(out: torch.Tensor, input: torch.Tensor, scale: torch.Tensor,
                              group_size: int) -> None:
    _checks.check_group_quant(out, input, scale, group_size)
    if out.shape[0] == 0:
        return
    m, k = input.shape
    groups = min(triton.next_power_of_2(k // group_size), _GROUPS_PER_PROGRAM)
    grid = (out.shape[0], triton.cdiv(k // group_size, groups))
    _per_token_group_quant_kernel[grid](
        out, scale, input, m, k, input.stride(0), scale.stride(0), scale.stride(1),
        GROUP_SIZE=group_size, GROUPS=groups)
