# SPDX-License-Identifier: Apache-2.0
"""The fork's FP8 kernel library: activation quant, scaled GEMM with fused
dequant, block-scaled GEMM; CUDA (sm_90a), Triton and CPU backends.

Functional API (allocates outputs, then calls the `torch.ops._custom_fp8`
out-variant ops, which are what torch.compile and CUDA graphs see):

    q, s = scaled_fp8_quant(x)                                # dynamic per-tensor
    q, s = scaled_fp8_quant(x, scale)                         # static per-tensor
    q, s = scaled_fp8_quant(x, use_per_token_if_dynamic=True) # dynamic per-token
    q, s = per_token_group_quant_fp8(x, column_major_scales=True)
    q, s = rms_norm_fp8_quant(h, norm_w, eps, residual)       # fused: norm (+ add) -> FP8
    q, s = silu_and_mul_fp8_quant(gate_up, group_size=128)    # fused: SwiGLU -> FP8 groups
    y = scaled_mm(q, w_t, s, w_scale, torch.bfloat16, bias)   # w_t = weight.t()
    y = block_scaled_mm(q, w_t, s, w_scale_inv.t(), torch.bfloat16)
"""

import torch

from . import _checks
from ._library import CUDA_BACKEND, NAMESPACE
from .numerics import FP8_DTYPE, GROUP_SIZE, tma_aligned_size

__all__ = [
    "CUDA_BACKEND",
    "block_scaled_mm",
    "per_token_group_quant_fp8",
    "rms_norm_fp8_quant",
    "scaled_fp8_quant",
    "scaled_mm",
    "silu_and_mul_fp8_quant",
]

ops = getattr(torch.ops, NAMESPACE)


def _quant_output(x2d: torch.Tensor, num_token_padding: int | None, output, cols=None):
    """out [max(M, num_token_padding), cols] (cols: the hidden size of x2d)."""
    cols = x2d.shape[1] if cols is None else cols
    rows = max(num_token_padding or 0, x2d.shape[0])
    if output is None:
        return torch.empty((rows, cols), dtype=FP8_DTYPE, device=x2d.device)
    return output.view(-1, cols)


def _group_scales(out: torch.Tensor, group_size: int, column_major: bool,
                  tma_aligned: bool) -> torch.Tensor:
    """Scales [M', K/g] of `out` [M', K]: row-major, or column-major with the
    leading dimension padded to a multiple of 4 when `tma_aligned`."""
    rows, groups = out.shape[0], out.shape[1] // group_size
    if column_major:
        ld = tma_aligned_size(rows) if tma_aligned else rows
        return torch.empty_strided((rows, groups), (1, ld), dtype=torch.float32,
                                   device=out.device)
    return torch.empty((rows, groups), dtype=torch.float32, device=out.device)


def _per_token_scales(out: torch.Tensor) -> torch.Tensor:
    return torch.empty((out.shape[0], 1), dtype=torch.float32, device=out.device)


def _gemm_output(op: str, a, b, out_dtype: torch.dtype, out):
    if out is not None:
        return out
    if out_dtype not in _checks.OUT_DTYPES:
        raise ValueError(f"custom_fp8.{op}: 'out_dtype' must be torch.bfloat16 or "
                         f"torch.float16, got {out_dtype}")
    return torch.empty((a.shape[0], b.shape[1]), dtype=out_dtype, device=a.device)


def scaled_fp8_quant(
    input: torch.Tensor,
    scale: torch.Tensor | None = None,
    num_token_padding: int | None = None,
    scale_ub: torch.Tensor | None = None,
    use_per_token_if_dynamic: bool = False,
    output: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Quantize `input` [..., K] to float8_e4m3fn; returns (codes [M', K], scale).

    Same contract as upstream `vllm._custom_ops.scaled_fp8_quant`: a given
    `scale` is static per-tensor; otherwise the scale is dynamic, per-tensor
    ([1]) or per-token ([M', 1], clamped above by `scale_ub`). M' is
    max(M, num_token_padding); padding rows are zero.
    """
    x = input.reshape(-1, input.shape[-1])
    out = _quant_output(x, num_token_padding, output)
    if scale is not None:
        ops.static_scaled_fp8_quant(out, x, scale)
    elif use_per_token_if_dynamic:
        scale = _per_token_scales(out)
        ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, scale_ub)
    else:
        if scale_ub is not None:
            raise ValueError("custom_fp8.scaled_fp8_quant: 'scale_ub' must be None for "
                             "per-tensor quant, got a tensor")
        scale = torch.empty(1, dtype=torch.float32, device=x.device)
        ops.dynamic_scaled_fp8_quant(out, x, scale)
    return out, scale


def per_token_group_quant_fp8(
    input: torch.Tensor,
    group_size: int = GROUP_SIZE,
    column_major_scales: bool = False,
    tma_aligned_scales: bool = False,
    out_q: torch.Tensor | None = None,
    num_token_padding: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """1 x group_size dynamic quant of `input` [M, K]; returns (codes, scales [M', K/g]).

    Scales are row-major, or column-major when `column_major_scales` (what the
    block-scaled GEMM takes), with rows padded to a multiple of 4 when
    `tma_aligned_scales` (upstream's TMA-aligned layout).
    """
    x = input.reshape(-1, input.shape[-1])
    out = _quant_output(x, num_token_padding, out_q)
    scale = _group_scales(out, group_size, column_major_scales, tma_aligned_scales)
    ops.per_token_group_fp8_quant(out, x, scale, group_size)
    return out, scale


def _fused_scale_mode(api: str, out: torch.Tensor, scale, scale_ub, group_size,
                      column_major_scales: bool, tma_aligned_scales: bool):
    """(op name suffix, scale, the mode's trailing op arguments) of the scale
    mode the arguments of a fused API function pick."""
    if scale is not None:
        for name, value in (("scale_ub", scale_ub), ("group_size", group_size)):
            if value is not None:
                raise ValueError(f"custom_fp8.{api}: '{name}' must be None with a static "
                                 f"scale, got {value!r}")
        return "static_fp8_quant", scale, ()
    if group_size is not None:
        if scale_ub is not None:
            raise ValueError(f"custom_fp8.{api}: 'scale_ub' must be None for per-token-group "
                             "quant, got a tensor")
        scale = _group_scales(out, group_size, column_major_scales, tma_aligned_scales)
        return "per_token_group_fp8_quant", scale, (group_size,)
    return "dynamic_per_token_fp8_quant", _per_token_scales(out), (scale_ub,)


def rms_norm_fp8_quant(
    input: torch.Tensor,
    weight: torch.Tensor,
    epsilon: float,
    residual: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    scale_ub: torch.Tensor | None = None,
    group_size: int | None = None,
    column_major_scales: bool = False,
    tma_aligned_scales: bool = False,
    num_token_padding: int | None = None,
    output: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RMSNorm(input [..., K]) * weight straight to float8_e4m3fn; returns
    (codes [M', K], scales): the codes and scales of the unfused rms_norm, then
    scaled_fp8_quant / per_token_group_quant_fp8 (docs/numerics.md).

    With `residual` (input's shape and dtype; updated in place): residual +=
    input, and the norm is of the updated residual (fused_add_rms_norm).
    Scale mode: a given `scale` is static per-tensor; a `group_size` (128) is
    per-token-group, scales [M', K/128] in per_token_group_quant_fp8's layouts;
    otherwise dynamic per-token, scales [M', 1] clamped above by `scale_ub`.
    """
    x = input.reshape(-1, input.shape[-1])
    res = None if residual is None else residual.view(x.shape)
    out = _quant_output(x, num_token_padding, output)
    op, scale, mode_args = _fused_scale_mode("rms_norm_fp8_quant", out, scale, scale_ub,
                                             group_size, column_major_scales, tma_aligned_scales)
    getattr(ops, "rms_norm_" + op)(out, x, weight, scale, epsilon, *mode_args, res)
    return out, scale


def silu_and_mul_fp8_quant(
    input: torch.Tensor,
    scale: torch.Tensor | None = None,
    scale_ub: torch.Tensor | None = None,
    group_size: int | None = None,
    column_major_scales: bool = False,
    tma_aligned_scales: bool = False,
    num_token_padding: int | None = None,
    output: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """silu(input[..., :N]) * input[..., N:] straight to float8_e4m3fn;
    returns (codes [M', N], scales), the scale mode picked as in
    rms_norm_fp8_quant."""
    x = input.reshape(-1, input.shape[-1])
    out = _quant_output(x, num_token_padding, output, cols=x.shape[1] // 2)
    op, scale, mode_args = _fused_scale_mode("silu_and_mul_fp8_quant", out, scale, scale_ub,
                                             group_size, column_major_scales, tma_aligned_scales)
    getattr(ops, "silu_and_mul_" + op)(out, x, scale, *mode_args)
    return out, scale


def scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    bias: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    config: int = -1,
) -> torch.Tensor:
    """out[M, N] = (scale_a * a[M, K]) @ (scale_b * b[K, N]) + bias, in out_dtype.

    `b` is the transpose of a row-major [N, K] weight (how vLLM keeps FP8
    weights); scale_a is per-tensor or per-token, scale_b per-tensor or
    per-channel; the dequant is fused into the GEMM epilogue.
    """
    out = _gemm_output("scaled_mm", a, b, out_dtype, out)
    ops.scaled_mm(out, a, b, scale_a, scale_b, bias, config)
    return out


def block_scaled_mm(
    a: torch.Tensor,
    b: torch.Tensor,
    scale_a: torch.Tensor,
    scale_b: torch.Tensor,
    out_dtype: torch.dtype,
    out: torch.Tensor | None = None,
    config: int = -1,
) -> torch.Tensor:
    """out = a @ b with 1x128 group scales on a ([M, K/128], column-major) and
    128x128 block scales on b ([K/128, N/128], the transpose of weight_scale_inv)."""
    out = _gemm_output("block_scaled_mm", a, b, out_dtype, out)
    ops.block_scaled_mm(out, a, b, scale_a, scale_b, config)
    return out
