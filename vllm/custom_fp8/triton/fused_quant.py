# SPDX-License-Identifier: Apache-2.0
"""Triton fused producer + FP8 quant: RMSNorm (optionally with the residual
add) and SiLU-and-mul, each in the static, dynamic per-token and
per-token-group (1 x 128) modes.

Same numerics as the CUDA kernels (csrc/quantization/custom_fp8/
rms_norm_quant.cu, silu_and_mul_quant.cu) and cpu.py: the producer rounds to
the input dtype where Inductor's code for vLLM's native ops rounds (once),
then the row is
quantized with quant.py's rules. What that takes in Triton, beyond quant.py's
notes:
  * the float32 -> bf16 rounding is done by hand under the interpreter, whose
    conversion does not round to nearest even;
  * exp is libdevice's expf on the GPU (tl.exp is ex2.approx, whose error
    grows with |x|), numpy's under the interpreter;
  * 1 / sqrt is sqrt_rn and div_rn (the sum of squares' order is this
    kernel's own: docs/numerics.md).
One kernel for both producers: one program per row of out, reading the row
in tiles of [GROUPS, 128].
"""

import torch
import triton
import triton.language as tl
from triton.language.extra import libdevice

from .. import _checks
from ..numerics import GROUP_SIZE
from .quant import (
    _INTERPRET,
    _clamp_nan_to_max,
    _clamp_nan_to_min,
    _group_scales,
    _nan_ignoring_abs,
    _per_token_scale,
    _to_e4m3,
)

_GROUP = tl.constexpr(GROUP_SIZE)
# The kernel's constexpr PRODUCER and MODE (scale mode).
RMS_NORM, SILU_AND_MUL = 0, 1
STATIC, PER_TOKEN, PER_TOKEN_GROUP = 0, 1, 2
_RMS_NORM = tl.constexpr(RMS_NORM)
_STATIC = tl.constexpr(STATIC)
_PER_TOKEN = tl.constexpr(PER_TOKEN)
# Largest tile: 32 groups of 128 (4096 elements).
_MAX_TILE_GROUPS = 32


@triton.jit
def _round_to(y, dtype: tl.constexpr):
    """float32 y rounded to `dtype` (nearest even) and back to float32."""
    if _INTERPRET and dtype == tl.bfloat16:
        # Round the float32 pattern to bf16's 8 significant bits by hand
        # (finite values; a carry into the exponent is the correct round-up).
        bits = y.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        y = bits.to(tl.float32, bitcast=True)
    return y.to(dtype).to(tl.float32)


@triton.jit
def _exp(x):
    if _INTERPRET:
        return tl.exp(x)
    return libdevice.exp(x)


@triton.jit
def _tile_cols(k0, GROUPS: tl.constexpr):
    """Columns of the [GROUPS, 128] tile starting at column k0."""
    return k0 + tl.arange(0, GROUPS)[:, None] * _GROUP + tl.arange(0, _GROUP)[None, :]


@triton.jit
def _quantize_tile(y, out_row, scale_ptr, row, k0, cols, K, row_scale, is_input_row,
                   scale_row_stride, scale_group_stride, MODE: tl.constexpr,
                   GROUPS: tl.constexpr):
    """Stores the codes of tile y (and, per group, its scales). row_scale:
    static, 1 / scale; per-token, the row's scale; group, unused. Padding
    rows (not is_input_row) come in as zeros."""
    if MODE == _STATIC:
        # Zero codes for padding rows, not 0 * (1 / scale) (NaN for a zero scale).
        q = tl.where(is_input_row, _clamp_nan_to_max(y * row_scale), 0.0)
    elif MODE == _PER_TOKEN:
        q = _clamp_nan_to_max(tl.math.div_rn(y, row_scale))
    else:
        scales = _group_scales(y)
        groups = k0 // _GROUP + tl.arange(0, GROUPS)
        tl.store(scale_ptr + row * scale_row_stride + groups * scale_group_stride, scales,
                 mask=groups * _GROUP < K)
        q = _clamp_nan_to_min(tl.math.div_rn(y, scales[:, None]))
    tl.store(out_row + cols, _to_e4m3(q), mask=cols < K)


@triton.jit
def _row_scale(given_ptr, row_amax, MODE: tl.constexpr, HAS_SCALE_UB: tl.constexpr):
    """_quantize_tile's row_scale: 1 / the given scale (static), the per-token
    scale of row_amax (clamped by *given_ptr where HAS_SCALE_UB), or 0 (group:
    unused)."""
    if MODE == _STATIC:
        return tl.math.div_rn(1.0, tl.load(given_ptr))
    elif MODE == _PER_TOKEN:
        return _per_token_scale(row_amax, given_ptr, HAS_SCALE_UB)
    else:
        return 0.0


@triton.jit
def _rms_norm_input(in_row, res_row, cols, mask, HAS_RESIDUAL: tl.constexpr,
                    WRITE_RESIDUAL: tl.constexpr):
    """z, the row RMSNorm normalizes: input, or input + residual in float32,
    with T(z) stored to residual where WRITE_RESIDUAL."""
    x = tl.load(in_row + cols, mask=mask, other=0.0)
    z = x.to(tl.float32)
    if HAS_RESIDUAL:
        z = z + tl.load(res_row + cols, mask=mask, other=0.0).to(tl.float32)
        if WRITE_RESIDUAL:
            tl.store(res_row + cols, _round_to(z, x.dtype).to(x.dtype), mask=mask)
    return z


@triton.jit
def _rms_norm_output(in_row, res_row, weight_ptr, cols, mask, inv_rms,
                     HAS_RESIDUAL: tl.constexpr, WRITE_RESIDUAL: tl.constexpr):
    """T((z * inv_rms) * weight) as float32: one rounding, as Inductor's code."""
    z = _rms_norm_input(in_row, res_row, cols, mask, HAS_RESIDUAL, WRITE_RESIDUAL)
    w = tl.load(weight_ptr + cols, mask=mask, other=0.0)
    return _round_to(z * inv_rms * w.to(tl.float32), w.dtype)


@triton.jit
def _silu_and_mul_output(gate_row, cols, mask, N):
    """T(silu(gate) * up) as float32, silu = gate / (1 + exp(-gate)) in float32."""
    gate = tl.load(gate_row + cols, mask=mask, other=0.0)
    up = tl.load(gate_row + N + cols, mask=mask, other=0.0).to(tl.float32)
    g = gate.to(tl.float32)
    silu = tl.math.div_rn(g, 1.0 + _exp(-g))
    return _round_to(silu * up, gate.dtype)


@triton.jit
def _inv_rms(in_row, res_row, K, epsilon, is_input_row, HAS_RESIDUAL: tl.constexpr,
             GROUPS: tl.constexpr):
    """1 / sqrt(mean(z * z) + eps) of the row, in float32."""
    sum_sq = tl.zeros((GROUPS, _GROUP), dtype=tl.float32)
    for k0 in range(0, K, GROUPS * _GROUP):
        cols = _tile_cols(k0, GROUPS)
        z = _rms_norm_input(in_row, res_row, cols, (cols < K) & is_input_row, HAS_RESIDUAL,
                            False)
        sum_sq += z * z
    mean_sq = tl.math.div_rn(tl.sum(tl.sum(sum_sq, 1), 0), K * 1.0)
    return tl.math.div_rn(1.0, tl.sqrt_rn(mean_sq + epsilon))


@triton.jit
def _produce(in_row, res_row, weight_ptr, cols, mask, inv_rms, K, PRODUCER: tl.constexpr,
             HAS_RESIDUAL: tl.constexpr, FINAL: tl.constexpr):
    """The producer's values of tile `cols` (zeros where not mask). FINAL:
    the last read of the tile, where the residual is written."""
    if PRODUCER == _RMS_NORM:
        return _rms_norm_output(in_row, res_row, weight_ptr, cols, mask, inv_rms, HAS_RESIDUAL,
                                FINAL)
    else:
        return _silu_and_mul_output(in_row, cols, mask, K)


@triton.jit
def _fused_quant_kernel(out_ptr, scale_ptr, in_ptr, res_ptr, weight_ptr, given_ptr, epsilon,
                        M, K, in_row_stride, scale_row_stride, scale_group_stride,
                        PRODUCER: tl.constexpr, MODE: tl.constexpr, HAS_RESIDUAL: tl.constexpr,
                        HAS_SCALE_UB: tl.constexpr, GROUPS: tl.constexpr):
    """Row `program_id` of out [M', K]: the quant of the producer's row
    (RMSNorm: inv_rms first; SiLU-and-mul: the input row is [gate | up], 2K
    wide). The per-token mode produces the row twice (absmax, then codes). A
    padding row reads as zeros."""
    row = tl.program_id(0).to(tl.int64)
    in_row = in_ptr + row * in_row_stride
    res_row = res_ptr + row * K
    out_row = out_ptr + row * K
    is_input_row = row < M

    inv_rms = 0.0
    if PRODUCER == _RMS_NORM:
        inv_rms = _inv_rms(in_row, res_row, K, epsilon, is_input_row, HAS_RESIDUAL, GROUPS)
    row_amax = 0.0
    if MODE == _PER_TOKEN:
        amax = tl.zeros((GROUPS, _GROUP), dtype=tl.float32)
        for k0 in range(0, K, GROUPS * _GROUP):
            cols = _tile_cols(k0, GROUPS)
            y = _produce(in_row, res_row, weight_ptr, cols, (cols < K) & is_input_row, inv_rms, K,
                         PRODUCER, HAS_RESIDUAL, False)
            amax = tl.maximum(amax, _nan_ignoring_abs(y))
        row_amax = tl.max(tl.max(amax, 1), 0)
    row_scale = _row_scale(given_ptr, row_amax, MODE, HAS_SCALE_UB)
    if MODE == _PER_TOKEN:
        tl.store(scale_ptr + row * scale_row_stride, row_scale)

    for k0 in range(0, K, GROUPS * _GROUP):
        cols = _tile_cols(k0, GROUPS)
        y = _produce(in_row, res_row, weight_ptr, cols, (cols < K) & is_input_row, inv_rms, K,
                     PRODUCER, HAS_RESIDUAL, True)
        _quantize_tile(y, out_row, scale_ptr, row, k0, cols, K, row_scale, is_input_row,
                       scale_row_stride, scale_group_stride, MODE, GROUPS)


def _launch_options(k: int) -> dict:
    groups = min(triton.next_power_of_2(triton.cdiv(k, GROUP_SIZE)), _MAX_TILE_GROUPS)
    return {"GROUPS": groups, "num_warps": 8 if groups >= 16 else 4}


def _scale_strides(mode: int, scale: torch.Tensor) -> tuple[int, int]:
    """(row, group) strides of the scales each mode writes (static: none)."""
    if mode == PER_TOKEN_GROUP:
        return scale.stride(0), scale.stride(1)
    return 1, 0


def _fused_quant(producer: int, mode: int, out, input, scale, given, weight=None, epsilon=0.0,
                 residual=None) -> None:
    """given: the static scale, or scale_ub (None for none)."""
    if out.shape[0] == 0:
        return
    k = out.shape[1]
    _fused_quant_kernel[(out.shape[0],)](
        out, scale, input, input if residual is None else residual,
        input if weight is None else weight, scale if given is None else given, epsilon,
        input.shape[0], k, input.stride(0), *_scale_strides(mode, scale), PRODUCER=producer,
        MODE=mode, HAS_RESIDUAL=residual is not None,
        HAS_SCALE_UB=mode == PER_TOKEN and given is not None, **_launch_options(k))


def rms_norm_static_fp8_quant(out, input, weight, scale, epsilon, residual=None) -> None:
    _checks.check_rms_norm_static_quant(out, input, weight, scale, epsilon, residual)
    _fused_quant(RMS_NORM, STATIC, out, input, scale, scale, weight, epsilon, residual)


def rms_norm_dynamic_per_token_fp8_quant(out, input, weight, scale, epsilon, scale_ub,
                                         residual=None) -> None:
    _checks.check_rms_norm_per_token_quant(out, input, weight, scale, epsilon, scale_ub, residual)
    _fused_quant(RMS_NORM, PER_TOKEN, out, input, scale, scale_ub, weight, epsilon, residual)


def rms_norm_per_token_group_fp8_quant(out, input, weight, scale, epsilon, group_size,
                                       residual=None) -> None:
    _checks.check_rms_norm_group_quant(out, input, weight, scale, epsilon, group_size, residual)
    _fused_quant(RMS_NORM, PER_TOKEN_GROUP, out, input, scale, None, weight, epsilon,
                 residual)


def silu_and_mul_static_fp8_quant(out, input, scale) -> None:
    _checks.check_silu_and_mul_static_quant(out, input, scale)
    _fused_quant(SILU_AND_MUL, STATIC, out, input, scale, scale)


def silu_and_mul_dynamic_per_token_fp8_quant(out, input, scale, scale_ub) -> None:
    _checks.check_silu_and_mul_per_token_quant(out, input, scale, scale_ub)
    _fused_quant(SILU_AND_MUL, PER_TOKEN, out, input, scale, scale_ub)


def silu_and_mul_per_token_group_fp8_quant(out, input, scale, group_size) -> None:
    _checks.check_silu_and_mul_group_quant(out, input, scale, group_size)
    _fused_quant(SILU_AND_MUL, PER_TOKEN_GROUP, out, input, scale, None)
