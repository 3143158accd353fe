# SPDX-License-Identifier: Apache-2.0
"""CPU implementations of the custom_fp8 ops in plain torch.

They let the vLLM engine run the fork's FP8 path on a CPU (CI). Quant codes
and scales are bit-identical to the CUDA kernels (and so to upstream vLLM
0.25.1's CUDA ops): the same float32 operations in the same order, the same
NaN-ignoring fminf/fmaxf clamps (torch.fmin/fmax), round-to-nearest-even
conversion. GEMMs accumulate in float32 and apply the scales in the
epilogue order of the CUDA kernel: scale_a * (scale_b * acc) + bias.
The fused producer + quant ops run the producer with the rounding points of
Inductor's code for vLLM's native RMSNorm and SiLU-and-mul (docs/numerics.md,
"Fused producers"), then the quant op above on its result: the unfused
sequence, by construction.
"""

import torch
import torch.nn.functional as F

from . import _checks
from .numerics import BLOCK_K, BLOCK_N, FP8_DTYPE, FP8_MAX, GROUP_EPS, PER_TOKEN_MIN_SCALE


def _to_fp8(y: torch.Tensor) -> torch.Tensor:
    """fmaxf(-448, fminf(y, 448)) then RNE: NaN becomes +448 as on the GPU."""
    return torch.fmax(torch.fmin(y, torch.tensor(FP8_MAX)), torch.tensor(-FP8_MAX)).to(FP8_DTYPE)


def _nan_ignoring_absmax(x: torch.Tensor, dim=None) -> torch.Tensor:
    """max(0, |x|) over `dim` where NaN never wins (fmaxf semantics)."""
    a = torch.nan_to_num(x.abs(), nan=0.0, posinf=float("inf"))
    if dim is None:
        return a.amax() if a.numel() else a.new_zeros(())
    return a.amax(dim=dim, keepdim=True)


def _write(out: torch.Tensor, q: torch.Tensor) -> None:
    m = q.shape[0]
    out[:m].copy_(q)
    out[m:].zero_()  # num_token_padding rows are zero-filled


def static_scaled_fp8_quant(out, input, scale) -> None:
    _checks.check_static_quant(out, input, scale)
    inv = torch.reciprocal(scale.reshape(()))          # 1.0f / scale
    _write(out, _to_fp8(input.float() * inv))


def dynamic_scaled_fp8_quant(out, input, scale) -> None:
    _checks.check_dynamic_quant(out, input, scale)
    x = input.float()
    s = (_nan_ignoring_absmax(x) / FP8_MAX).reshape(scale.shape)  # no lower clamp
    scale.copy_(s)
    _write(out, _to_fp8(x * torch.reciprocal(s.reshape(()))))


def dynamic_per_token_scaled_fp8_quant(out, input, scale, scale_ub) -> None:
    _checks.check_per_token_quant(out, input, scale, scale_ub)
    x = input.float()
    amax = _nan_ignoring_absmax(x, dim=1)
    if scale_ub is not None:
        amax = torch.fmin(amax, scale_ub.reshape(()))
    s = torch.clamp_min(amax / FP8_MAX, PER_TOKEN_MIN_SCALE)
    m = x.shape[0]
    scale.view(-1)[:m].copy_(s.view(-1))
    scale.view(-1)[m:].fill_(PER_TOKEN_MIN_SCALE)  # padding rows act as all-zero rows
    _write(out, _to_fp8(x / s))                       # true division, as upstream


def per_token_group_fp8_quant(out, input, scale, group_size) -> None:
    _checks.check_group_quant(out, input, scale, group_size)
    m, k = input.shape
    x = input.float().view(m, k // group_size, group_size)
    amax = torch.clamp_min(_nan_ignoring_absmax(x, dim=2), torch.tensor(GROUP_EPS, dtype=torch.float32))
    s = amax / FP8_MAX
    # fminf(fmaxf(x / s, -448), 448): NaN becomes -448 in this kernel.
    y = torch.fmin(torch.fmax(x / s, torch.tensor(-FP8_MAX)), torch.tensor(FP8_MAX))
    scale[:m].copy_(s.squeeze(2))
    scale[m:].fill_(float(torch.tensor(GROUP_EPS, dtype=torch.float32) / FP8_MAX))
    _write(out, y.to(FP8_DTYPE).view(m, k))


def rms_norm_in_dtype(input: torch.Tensor, weight: torch.Tensor, epsilon: float,
                      residual: torch.Tensor | None) -> torch.Tensor:
    """vLLM's native rms_norm / fused_add_rms_norm IR ops as Inductor compiles
    them: z = input, or z = input + residual in float32 with residual <- T(z);
    then T((z * rsqrt(mean(z * z) + eps)) * weight), rounded once."""
    z = input.float()
    if residual is not None:
        z = z + residual.float()
        residual.copy_(z)
    inv_rms = torch.rsqrt((z * z).mean(dim=1, keepdim=True) + epsilon)
    return (z * inv_rms * weight.float()).to(input.dtype)


def silu_and_mul_in_dtype(input: torch.Tensor) -> torch.Tensor:
    """vLLM's native SiLU-and-mul as Inductor compiles it: T(silu(gate) * up)
    with the silu in float32 (torch's is gate / (1 + exp(-gate)))."""
    n = input.shape[1] // 2
    return (F.silu(input[:, :n].float()) * input[:, n:].float()).to(input.dtype)


def rms_norm_static_fp8_quant(out, input, weight, scale, epsilon, residual=None) -> None:
    _checks.check_rms_norm_static_quant(out, input, weight, scale, epsilon, residual)
    static_scaled_fp8_quant(out, rms_norm_in_dtype(input, weight, epsilon, residual), scale)


def rms_norm_dynamic_per_token_fp8_quant(out, input, weight, scale, epsilon, scale_ub,
                                         residual=None) -> None:
    _checks.check_rms_norm_per_token_quant(out, input, weight, scale, epsilon, scale_ub, residual)
    dynamic_per_token_scaled_fp8_quant(out, rms_norm_in_dtype(input, weight, epsilon, residual),
                                       scale, scale_ub)


def rms_norm_per_token_group_fp8_quant(out, input, weight, scale, epsilon, group_size,
                                       residual=None) -> None:
    _checks.check_rms_norm_group_quant(out, input, weight, scale, epsilon, group_size, residual)
    per_token_group_fp8_quant(out, rms_norm_in_dtype(input, weight, epsilon, residual), scale,
                              group_size)


def silu_and_mul_static_fp8_quant(out, input, scale) -> None:
    _checks.check_silu_and_mul_static_quant(out, input, scale)
    static_scaled_fp8_quant(out, silu_and_mul_in_dtype(input), scale)


def silu_and_mul_dynamic_per_token_fp8_quant(out, input, scale, scale_ub) -> None:
    _checks.check_silu_and_mul_per_token_quant(out, input, scale, scale_ub)
    dynamic_per_token_scaled_fp8_quant(out, silu_and_mul_in_dtype(input), scale, scale_ub)


def silu_and_mul_per_token_group_fp8_quant(out, input, scale, group_size) -> None:
    _checks.check_silu_and_mul_group_quant(out, input, scale, group_size)
    per_token_group_fp8_quant(out, silu_and_mul_in_dtype(input), scale, group_size)


def scaled_mm(out, a, b, scale_a, scale_b, bias, config: int = -1) -> None:
    _checks.check_scaled_mm(out, a, b, scale_a, scale_b, bias)
    acc = a.float() @ b.float()
    sa = scale_a.reshape(-1, 1) if scale_a.numel() > 1 else scale_a.reshape(())
    sb = scale_b.reshape(1, -1) if scale_b.numel() > 1 else scale_b.reshape(())
    y = sa * (sb * acc)
    if bias is not None:
        y = y + bias.float()
    out.copy_(y)


def block_scaled_mm(out, a, b, scale_a, scale_b, config: int = -1) -> None:
    _checks.check_block_scaled_mm(out, a, b, scale_a, scale_b)
    m, k = a.shape
    n = b.shape[1]
    acc = torch.zeros(m, n, dtype=torch.float32)
    bf = b.float()
    sb = scale_b.repeat_interleave(BLOCK_N, dim=1)[:, :n]
    for kb in range(k // BLOCK_K):
        ks = slice(kb * BLOCK_K, (kb + 1) * BLOCK_K)
        partial = a[:, ks].float() @ bf[ks]
        acc += partial * scale_a[:, kb:kb + 1] * sb[kb]
    out.copy_(acc)
