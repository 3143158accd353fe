# SPDX-License-Identifier: Apache-2.0
"""Argument checks shared by the Python API, the fake impls and the CPU and
Triton backends. The CUDA entry points repeat them in C++
(csrc/quantization/custom_fp8/checks.h) with the same wording.

Every error names the argument and says what was expected:
    custom_fp8.scaled_mm: 'scale_a' must be float32, got torch.float16
"""

import torch

from .numerics import BLOCK_K, BLOCK_N, FP8_DTYPE, GEMM_ALIGNMENT, GROUP_SIZE, cdiv

ACTIVATION_DTYPES = (torch.bfloat16, torch.float16, torch.float32)
OUT_DTYPES = (torch.bfloat16, torch.float16)


class _Checker:
    def __init__(self, op: str, device: torch.device):
        self.op = op
        self.device = device

    def fail(self, arg: str, expected: str, got) -> None:
        raise ValueError(f"custom_fp8.{self.op}: '{arg}' must be {expected}, got {got}")

    def tensor(self, arg: str, t, dtypes, ndim: int | None = None) -> None:
        if not isinstance(t, torch.Tensor):
            self.fail(arg, "a torch.Tensor", type(t).__name__)
        if t.dtype not in dtypes:
            self.fail(arg, " or ".join(str(d) for d in dtypes), t.dtype)
        if t.device != self.device:
            self.fail(arg, f"on {self.device} (the device of the first tensor)", t.device)
        if ndim is not None and t.dim() != ndim:
            self.fail(arg, f"{ndim}-D", f"shape {tuple(t.shape)}")

    def contiguous(self, arg: str, t: torch.Tensor) -> None:
        if not t.is_contiguous():
            self.fail(arg, "contiguous", f"strides {t.stride()}")

    def scalar_scale(self, arg: str, t: torch.Tensor) -> None:
        self.tensor(arg, t, (torch.float32,))
        if t.numel() != 1:
            self.fail(arg, "a per-tensor scale with one element", f"shape {tuple(t.shape)}")


def _quant_common(op: str, out, input, gated: bool = False) -> _Checker:
    """input [M, K] -> out [M' >= M, K]; gated (silu_and_mul): input [M, 2N]
    (gate | up) -> out [M' >= M, N]."""
    if not isinstance(input, torch.Tensor):
        raise ValueError(f"custom_fp8.{op}: 'input' must be a torch.Tensor, got {type(input).__name__}")
    c = _Checker(op, input.device)
    c.tensor("input", input, ACTIVATION_DTYPES, ndim=2)
    if input.shape[1] == 0:
        c.fail("input", "of a hidden size > 0", f"shape {tuple(input.shape)}")
    if input.stride(1) != 1:
        c.fail("input", "contiguous in its last dimension", f"strides {input.stride()}")
    if gated and input.shape[1] % 2 != 0:
        c.fail("input", "of an even hidden size (the gate and up halves)",
               f"shape {tuple(input.shape)}")
    k = input.shape[1] // 2 if gated else input.shape[1]
    c.tensor("out", out, (FP8_DTYPE,), ndim=2)
    c.contiguous("out", out)
    if out.shape[1] != k or out.shape[0] < input.shape[0]:
        c.fail("out", f"of shape [>= {input.shape[0]}, {k}] (padding rows allowed)",
               f"shape {tuple(out.shape)}")
    return c


def _per_token_scale(c: _Checker, out, scale, scale_ub) -> None:
    c.tensor("scale", scale, (torch.float32,))
    c.contiguous("scale", scale)
    if scale.numel() != out.shape[0]:
        c.fail("scale", f"a per-token scale with {out.shape[0]} elements (one per row of 'out')",
               f"shape {tuple(scale.shape)}")
    if scale_ub is not None:
        c.scalar_scale("scale_ub", scale_ub)


def _group_scale(c: _Checker, out, input, scale, group_size: int) -> None:
    if group_size != GROUP_SIZE:
        c.fail("group_size", str(GROUP_SIZE), group_size)
    k = out.shape[1]
    if k % group_size != 0:
        gated = input.shape[1] != k
        c.fail("input", f"of a hidden size divisible by 2 * group_size={2 * group_size} "
               "(gate and up halves)" if gated else
               f"of a hidden size divisible by group_size={group_size}",
               f"shape {tuple(input.shape)}")
    c.tensor("scale", scale, (torch.float32,), ndim=2)
    rows, groups = out.shape[0], k // group_size
    if tuple(scale.shape) != (rows, groups):
        c.fail("scale", f"of shape [{rows}, {groups}]", f"shape {tuple(scale.shape)}")
    row_major = scale.stride(1) == 1 and scale.stride(0) >= groups
    col_major = scale.stride(0) == 1 and scale.stride(1) >= rows
    if rows > 1 and groups > 1 and not (row_major or col_major):
        c.fail("scale", "row-major or column-major (TMA-aligned) strides", f"strides {scale.stride()}")


def _rms_norm(c: _Checker, input, weight, residual) -> None:
    """weight [K] and residual [M, K] (contiguous) of the input's dtype, as
    upstream's rms_norm and fused_add_rms_norm take them."""
    c.tensor("weight", weight, (input.dtype,), ndim=1)
    if weight.shape[0] != input.shape[1]:
        c.fail("weight", f"of shape [{input.shape[1]}] (the hidden size of input)",
               f"shape {tuple(weight.shape)}")
    c.contiguous("weight", weight)
    if residual is not None:
        c.tensor("residual", residual, (input.dtype,), ndim=2)
        if residual.shape != input.shape:
            c.fail("residual", f"of the shape of input {tuple(input.shape)}",
                   f"shape {tuple(residual.shape)}")
        c.contiguous("residual", residual)


def check_static_quant(out, input, scale) -> None:
    c = _quant_common("static_scaled_fp8_quant", out, input)
    c.scalar_scale("scale", scale)


def check_dynamic_quant(out, input, scale) -> None:
    c = _quant_common("dynamic_scaled_fp8_quant", out, input)
    c.scalar_scale("scale", scale)


def check_per_token_quant(out, input, scale, scale_ub) -> None:
    c = _quant_common("dynamic_per_token_scaled_fp8_quant", out, input)
    _per_token_scale(c, out, scale, scale_ub)


def check_group_quant(out, input, scale, group_size: int) -> None:
    c = _quant_common("per_token_group_fp8_quant", out, input)
    _group_scale(c, out, input, scale, group_size)


def check_rms_norm_static_quant(out, input, weight, scale, epsilon: float,
                                residual=None) -> None:
    c = _quant_common("rms_norm_static_fp8_quant", out, input)
    _rms_norm(c, input, weight, residual)
    c.scalar_scale("scale", scale)


def check_rms_norm_per_token_quant(out, input, weight, scale, epsilon: float, scale_ub,
                                   residual=None) -> None:
    c = _quant_common("rms_norm_dynamic_per_token_fp8_quant", out, input)
    _rms_norm(c, input, weight, residual)
    _per_token_scale(c, out, scale, scale_ub)


def check_rms_norm_group_quant(out, input, weight, scale, epsilon: float, group_size: int,
                               residual=None) -> None:
    c = _quant_common("rms_norm_per_token_group_fp8_quant", out, input)
    _rms_norm(c, input, weight, residual)
    _group_scale(c, out, input, scale, group_size)


def check_silu_and_mul_static_quant(out, input, scale) -> None:
    c = _quant_common("silu_and_mul_static_fp8_quant", out, input, gated=True)
    c.scalar_scale("scale", scale)


def check_silu_and_mul_per_token_quant(out, input, scale, scale_ub) -> None:
    c = _quant_common("silu_and_mul_dynamic_per_token_fp8_quant", out, input, gated=True)
    _per_token_scale(c, out, scale, scale_ub)


def check_silu_and_mul_group_quant(out, input, scale, group_size: int) -> None:
    c = _quant_common("silu_and_mul_per_token_group_fp8_quant", out, input, gated=True)
    _group_scale(c, out, input, scale, group_size)


def _gemm_common(op: str, out, a, b):
    if not isinstance(a, torch.Tensor):
        raise ValueError(f"custom_fp8.{op}: 'a' must be a torch.Tensor, got {type(a).__name__}")
    c = _Checker(op, a.device)
    c.tensor("a", a, (FP8_DTYPE,), ndim=2)
    c.tensor("b", b, (FP8_DTYPE,), ndim=2)
    m, k = a.shape
    if b.shape[0] != k:
        c.fail("b", f"of shape [K={k}, N] (the transpose of a row-major [N, K] weight)",
               f"shape {tuple(b.shape)}")
    n = b.shape[1]
    if k % GEMM_ALIGNMENT != 0:
        c.fail("a", f"of a K divisible by {GEMM_ALIGNMENT}", f"K={k}")
    if n % GEMM_ALIGNMENT != 0:
        c.fail("b", f"of an N divisible by {GEMM_ALIGNMENT}", f"N={n}")
    if a.stride(1) != 1 or a.stride(0) % GEMM_ALIGNMENT != 0:
        c.fail("a", f"row-major with a row stride divisible by {GEMM_ALIGNMENT}",
               f"strides {a.stride()}")
    if b.stride(0) != 1 or b.stride(1) % GEMM_ALIGNMENT != 0:
        c.fail("b", f"column-major (b.t() row-major) with a column stride divisible by "
               f"{GEMM_ALIGNMENT}", f"strides {b.stride()}")
    c.tensor("out", out, OUT_DTYPES, ndim=2)
    c.contiguous("out", out)
    if tuple(out.shape) != (m, n):
        c.fail("out", f"of shape [{m}, {n}]", f"shape {tuple(out.shape)}")
    return c, m, k, n


def check_scaled_mm(out, a, b, scale_a, scale_b, bias, config: int = -1) -> None:
    c, m, _, n = _gemm_common("scaled_mm", out, a, b)
    c.tensor("scale_a", scale_a, (torch.float32,))
    c.contiguous("scale_a", scale_a)
    if scale_a.numel() not in (1, m) or scale_a.dim() > 2 or (
            scale_a.dim() == 2 and scale_a.shape[1] != 1):
        c.fail("scale_a", f"per-tensor (1 element) or per-token ([{m}, 1])",
               f"shape {tuple(scale_a.shape)}")
    c.tensor("scale_b", scale_b, (torch.float32,))
    c.contiguous("scale_b", scale_b)
    if scale_b.numel() not in (1, n) or scale_b.dim() > 2:
        c.fail("scale_b", f"per-tensor (1 element) or per-channel ({n} elements)",
               f"shape {tuple(scale_b.shape)}")
    if bias is not None:
        c.tensor("bias", bias, (out.dtype,), ndim=1)
        c.contiguous("bias", bias)
        if bias.shape[0] != n:
            c.fail("bias", f"of shape [{n}]", f"shape {tuple(bias.shape)}")


def check_block_scaled_mm(out, a, b, scale_a, scale_b, config: int = -1) -> None:
    c, m, k, n = _gemm_common("block_scaled_mm", out, a, b)
    if k % BLOCK_K != 0:
        c.fail("a", f"of a K divisible by the block size {BLOCK_K}", f"K={k}")
    c.tensor("scale_a", scale_a, (torch.float32,), ndim=2)
    if tuple(scale_a.shape) != (m, k // BLOCK_K):
        c.fail("scale_a", f"of shape [{m}, {k // BLOCK_K}] (1x{BLOCK_K} groups)",
               f"shape {tuple(scale_a.shape)}")
    if m > 0 and (scale_a.stride(0) != 1 or scale_a.stride(1) < m):
        c.fail("scale_a", "column-major (per_token_group_quant_fp8 with "
               "column_major_scales=True)", f"strides {scale_a.stride()}")
    c.tensor("scale_b", scale_b, (torch.float32,), ndim=2)
    kb, nb = k // BLOCK_K, cdiv(n, BLOCK_N)
    if tuple(scale_b.shape) != (kb, nb):
        c.fail("scale_b", f"of shape [{kb}, {nb}] ({BLOCK_K}x{BLOCK_N} blocks, the transpose "
               "of weight_scale_inv)", f"shape {tuple(scale_b.shape)}")
    if not scale_b.t().is_contiguous():
        c.fail("scale_b", "the transpose of a contiguous [N/128, K/128] weight_scale_inv",
               f"strides {scale_b.stride()}")
