# SPDX-License-Identifier: Apache-2.0
"""The fork's FP8 kernel library: activation quant, scaled GEMM with fused
dequant, block-scaled GEMM; CUDA (sm_90a), Triton and CPU backends.

Functional API (allocates outputs, then calls the `torch.ops._custom_fp8`
out-variant ops, which are what torch.compile and CUDA graphs see):

    q, s = scaled_fp8_quant(x)                                # dynamic per-tensor
    q, s = scaled_fp8_quant(x, scale)                         # static per-tensor
    q, s = scaled_fp8_quant(x, use_per_token_if_dynamic=True) # dynamic per-token
    q, s = per_token_group_quant_fp8(x, column_major_scales=True)
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
    "scaled_fp8_quant",
    "scaled_mm",
]

ops = getattr(torch.ops, NAMESPACE)


def _quant_output(x2d: torch.Tensor, num_token_padding: int | None, output):
    rows = max(num_token_padding or 0, x2d.shape[0])
    if output is None:
        return torch.empty((rows, x2d.shape[1]), dtype=FP8_DTYPE, device=x2d.device)
    return output.view(-1, x2d.shape[1])


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
        scale = torch.empty((out.shape[0], 1), dtype=torch.float32, device=x.device)
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
    rows, groups = out.shape[0], x.shape[1] // group_size
    if column_major_scales:
        ld = tma_aligned_size(rows) if tma_aligned_scales else rows
        scale = torch.empty_strided((rows, groups), (1, ld), dtype=torch.float32, device=x.device)
    else:
        scale = torch.empty((rows, groups), dtype=torch.float32, device=x.device)
    ops.per_token_group_fp8_quant(out, x, scale, group_size)
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
) -> torch.Tensor:
    """out = a @ b with 1x128 group scales on a ([M, K/128], column-major) and
    128x128 block scales on b ([K/128, N/128], the transpose of weight_scale_inv)."""
    out = _gemm_output("block_scaled_mm", a, b, out_dtype, out)
    ops.block_scaled_mm(out, a, b, scale_a, scale_b)
    return out
