# SPDX-License-Identifier: Apache-2.0
"""The fused producer + FP8 quant ops: rms_norm_* (with and without the fused
residual add) and silu_and_mul_*, in the static, dynamic per-token and
per-token-group modes.

Their contract (docs/numerics.md, "Fused producers"): the codes and scales of
the unfused sequence "producer output in the input dtype, then our quant op".
tests/fused_check.py checks that against float64, allowing only the two
implementation-dependent float32 values (RMSNorm's 1/rms, SiLU's exp) their
stated tiny bounds; every output starts poisoned, so an element a kernel
leaves unwritten fails the check. Deliberately wrong producers must fail it.
"""

import numpy as np
import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8 import cpu as cpu_impl
from vllm.custom_fp8.numerics import GROUP_SIZE

import fused_check as fc
from conftest import DEVICES, FP8, activation, on_gpu_run, poisoned

ops = torch.ops._custom_fp8
DTYPES = [torch.bfloat16, torch.float16]
EPS = fc.EPS
# (M, K): decode and prefill row counts at the models' hidden sizes, plus a
# hidden size with a tail (no 16-byte vectors, no 128-groups), plus rows too
# long for the per-token mode's register cache (fused_quant.cuh: K > 6144 at
# M >= 256, K > 24576 below).
RMS_SHAPES = [(1, 4096), (3, 3584), (64, 5120), (257, 4096), (5, 100), (260, 7168)]
# (M, N) of silu_and_mul: the models' intermediate sizes (per TP shard too),
# and Llama-70B's 28672.
SILU_SHAPES = [(1, 14336), (3, 18944), (64, 3584), (257, 1536), (5, 100), (260, 7168),
               (2, 28672)]
# Largest M * K the CPU runs (the GPU run takes every shape).
CPU_MAX_ELEMS = 2_000_000


def skip_unsupported(mode: str, k: int, m: int, device: str) -> None:
    if mode == "group" and k % GROUP_SIZE:
        pytest.skip("group quant needs a hidden size divisible by 128")
    if device == "cpu" and m * k > CPU_MAX_ELEMS and not on_gpu_run():
        pytest.skip("covered on the GPU run")


QUANT_OPS = {"static": ops.static_scaled_fp8_quant,
             "per_token": ops.dynamic_per_token_scaled_fp8_quant,
             "per_token_ub": ops.dynamic_per_token_scaled_fp8_quant,
             "group": ops.per_token_group_fp8_quant}


def run_rms_norm(mode, x, weight, residual, rows=None, column_major=False):
    return fc.run_rms_norm(ops, mode, x, weight, residual, rows, column_major)


def run_silu_and_mul(mode, x, rows=None, column_major=False):
    return fc.run_silu_and_mul(ops, mode, x, rows, column_major)


def run_unfused(mode, y, rows=None, column_major=False):
    """Our standalone quant op of `mode` on the producer output y."""
    rows = y.shape[0] if rows is None else rows
    out = poisoned((rows, y.shape[1]), FP8, y.device)
    scale, extra = fc.scale_args(mode, rows, y.shape[1], y.device, column_major)
    QUANT_OPS[mode](out, y, scale, *extra)
    return out, scale


def assert_same_bits(got, want, what: str):
    np.testing.assert_array_equal(fc.bits(got), fc.bits(want), err_msg=what)


# ------------------------------------------------------- against float64

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", fc.MODES)
@pytest.mark.parametrize("with_residual", [False, True], ids=["norm", "add_norm"])
@pytest.mark.parametrize("m,k", RMS_SHAPES)
def test_rms_norm_quant(device, dtype, mode, with_residual, m, k):
    skip_unsupported(mode, k, m, device)
    x, weight, residual = fc.rms_norm_operands(m, k, dtype, device, seed=m * 31 + k)
    residual_in = residual.clone()
    out, scale = run_rms_norm(mode, x, weight, residual if with_residual else None)
    rows_at = fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale,
                                      residual_in if with_residual else None, residual)
    assert sum(rows_at.values()) == m


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", fc.MODES)
@pytest.mark.parametrize("m,n", SILU_SHAPES)
def test_silu_and_mul_quant(device, dtype, mode, m, n):
    skip_unsupported(mode, n, m, device)
    x = activation(m, 2 * n, dtype, device, seed=m * 17 + n)
    out, scale = run_silu_and_mul(mode, x)
    ambiguous, flipped = fc.check_silu_and_mul_quant(mode, x, out, scale)
    # Ambiguous elements: a uniform share of about 2 * SILU_REL / (T's relative
    # spacing) (fp16 ~2^-10), plus small gates, where silu(x) = x/2 + x^2/4 -
    # x^4/48... lands within x^3/24 of a rounding boundary of T for bf16 x near
    # 2^-7 * odd: measured at most 0.33% of elements on these inputs (bf16,
    # M = 2, N = 28672, the GPU's random numbers).
    assert ambiguous <= 5e-3 * m * n + 8, ambiguous
    assert flipped <= ambiguous


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", fc.MODES)
def test_padding_rows_and_column_major_scales(device, mode):
    """num_token_padding rows (zero codes, all-zero-row scales) and the
    column-major TMA-aligned group scales block_scaled_mm takes."""
    x, weight, residual = fc.rms_norm_operands(5, 256, torch.bfloat16, device, seed=3)
    residual_in = residual.clone()
    out, scale = run_rms_norm(mode, x, weight, residual, rows=8, column_major=True)
    fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale, residual_in, residual)
    gate_up = activation(5, 512, torch.bfloat16, device, seed=4)
    out, scale = run_silu_and_mul(mode, gate_up, rows=8, column_major=True)
    fc.check_silu_and_mul_quant(mode, gate_up, out, scale)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["static", "per_token", "group"])
def test_float32_input(device, mode):
    """float32 activations: the producers' roundings to T are exact."""
    x, weight, residual = fc.rms_norm_operands(7, 384, torch.float32, device, seed=5)
    residual_in = residual.clone()
    out, scale = run_rms_norm(mode, x, weight, residual)
    fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale, residual_in, residual)
    gate_up = activation(7, 768, torch.float32, device, seed=6)
    out, scale = run_silu_and_mul(mode, gate_up)
    fc.check_silu_and_mul_quant(mode, gate_up, out, scale)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", ["static", "per_token", "group"])
def test_strided_and_unaligned_rows(device, mode):
    """Row strides > K and rows that do not start 16-byte aligned take the
    element-wise path and still match."""
    base = activation(6, 1024 + 136, torch.bfloat16, device, seed=7)
    weight = fc.rms_norm_operands(1, 512, torch.bfloat16, device, seed=8)[1]
    for x in (base[:, :512], base[:, 3:515]):
        out, scale = run_rms_norm(mode, x, weight, None)
        fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale)
    weight_view = torch.cat([weight.new_zeros(1), weight])[1:]  # misaligned by 2 bytes
    out, scale = run_rms_norm(mode, base[:, :512], weight_view, None)
    fc.check_rms_norm_quant(mode, base[:, :512], weight_view, EPS, out, scale)
    for gate_up in (base[:, :1024], base[:, 1:1025]):
        out, scale = run_silu_and_mul(mode, gate_up)
        fc.check_silu_and_mul_quant(mode, gate_up, out, scale)


# ------------------------------------------------ fused == unfused

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", fc.MODES)
def test_silu_and_mul_equals_unfused(device, dtype, mode):
    """T(F.silu(gate) * up) with a float32 silu, then our quant op: the same
    codes and scales on every device (torch's silu is x / (1 + exp(-x)) in
    float32, as ours, with the same exp on the CPU and expf on the GPU)."""
    x = activation(64, 2 * 1536, dtype, device, seed=9)
    out, scale = run_silu_and_mul(mode, x, rows=67)
    want_out, want_scale = run_unfused(mode, cpu_impl.silu_and_mul_in_dtype(x), rows=67)
    assert_same_bits(out, want_out, "codes")
    assert_same_bits(scale, want_scale, "scales")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode", fc.MODES)
def test_rms_norm_equals_unfused(device, dtype, mode):
    """rms_norm (torch, Inductor's rounding point) in T, then our quant op.
    On the CPU, the same sum of squares: the same bits. Elsewhere the sum's
    order is the kernel's own, so both sides must pass the float64 check."""
    x, weight, residual = fc.rms_norm_operands(64, 2048, dtype, device, seed=10)
    residual_in, residual_unfused = residual.clone(), residual.clone()
    out, scale = run_rms_norm(mode, x, weight, residual)
    y = cpu_impl.rms_norm_in_dtype(x, weight, EPS, residual_unfused)
    want_out, want_scale = run_unfused(mode, y)
    assert_same_bits(residual, residual_unfused, "residual")
    if device == "cpu":
        assert_same_bits(out, want_out, "codes")
        assert_same_bits(scale, want_scale, "scales")
    else:
        for o, s in ((out, scale), (want_out, want_scale)):
            fc.check_rms_norm_quant(mode, x, weight, EPS, o, s, residual_in, residual)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", fc.MODES)
def test_special_values(device, mode):
    """NaN, inf, all-zero and overflowing rows give the unfused sequence's
    codes and scales bit for bit on every device: none of these rows depends
    on the sum's order (a NaN or inf sum propagates, an overflowing sum makes
    1/rms 0, a zero row normalizes to zeros)."""
    x = activation(6, 256, torch.float32, "cpu", seed=11)
    x[0, 3] = float("nan")
    x[1, 7], x[1, 8] = float("inf"), float("-inf")
    x[2] = 0.0
    x[3, :128] = -0.0
    x[3, 128:] = 0.0
    x[4, 5] = 3e38
    x[5] = float("nan")
    x = x.to(torch.bfloat16).to(device)
    weight = torch.ones(256, dtype=torch.bfloat16, device=device)
    out, scale = run_rms_norm(mode, x, weight, None)
    want_out, want_scale = run_unfused(mode, cpu_impl.rms_norm_in_dtype(x, weight, EPS, None))
    assert_same_bits(out, want_out, "codes")
    if mode != "static":
        assert_same_bits(scale, want_scale, "scales")

    gate_up = torch.cat([x, x.flip(0)], dim=1)  # gate and up both special
    out, scale = run_silu_and_mul(mode, gate_up)
    want_out, want_scale = run_unfused(mode, cpu_impl.silu_and_mul_in_dtype(gate_up))
    assert_same_bits(out, want_out, "codes")
    if mode != "static":
        assert_same_bits(scale, want_scale, "scales")


# ------------------------------------------------ against Inductor

def _native_rms_norm(x, weight, residual):
    """vLLM's native fused_add_rms_norm as written (vllm/ir/ops/layernorm.py):
    the casts to T round twice when run eagerly."""
    z = x.float() + residual.float()
    normed = (z * torch.rsqrt(z.pow(2).mean(dim=-1, keepdim=True) + EPS)).to(x.dtype) * weight
    return normed, z.to(x.dtype)


def _native_silu_and_mul(x):
    """vLLM's SiluAndMul.forward_native as written."""
    n = x.shape[-1] // 2
    return torch.nn.functional.silu(x[..., :n]) * x[..., n:]


# Codes that may differ from Inductor's: its own sum of squares and (on the
# GPU) its own exp / sigmoid move a value across a rounding boundary of T
# rarely (CPU: 0.002% of RMSNorm values). Rounding twice, as the eager native
# ops do, moves 27% of the values.
INDUCTOR_MISMATCH = 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_equals_inductor_compiled_producers(device):
    """What the fusion pass replaces in compiled mode: Inductor's code for the
    native producers, then our per-token quant. The fused ops give the same
    codes, scales and residual but for INDUCTOR_MISMATCH."""
    x, weight, residual = fc.rms_norm_operands(64, 4096, torch.bfloat16, device, seed=17)
    gate_up = activation(64, 2 * 3584, torch.bfloat16, device, seed=18)
    torch._dynamo.reset()
    norm = torch.compile(_native_rms_norm, fullgraph=True, dynamic=False)
    silu = torch.compile(_native_silu_and_mul, fullgraph=True, dynamic=False)
    normed, residual_compiled = norm(x, weight, residual)
    for fused, (want, want_scale) in (
            (run_rms_norm("per_token", x, weight, residual), run_unfused("per_token", normed)),
            (run_silu_and_mul("per_token", gate_up),
             run_unfused("per_token", silu(gate_up)))):
        out, scale = fused
        codes_off = (fc.bits(out) != fc.bits(want)).mean()
        scales_off = (fc.bits(scale) != fc.bits(want_scale)).mean()
        assert codes_off <= INDUCTOR_MISMATCH and scales_off <= INDUCTOR_MISMATCH, (
            codes_off, scales_off)
    assert_same_bits(residual, residual_compiled, "residual")


# ------------------------------------------------ API, edge cases

@pytest.mark.parametrize("device", DEVICES)
def test_functional_api(device):
    """Leading dimensions flatten; the residual is updated in place; the scale
    mode follows the arguments; the outputs are what scaled_mm and
    block_scaled_mm take."""
    x, weight, residual = fc.rms_norm_operands(6, 256, torch.bfloat16, device, seed=12)
    x3, residual3 = x.view(2, 3, 256), residual.clone().view(2, 3, 256)
    q, s = cf8.rms_norm_fp8_quant(x3, weight, EPS, residual3)
    assert q.shape == (6, 256) and s.shape == (6, 1)
    out, scale = run_rms_norm("per_token", x, weight, residual)
    assert_same_bits(q, out, "codes")
    assert_same_bits(residual3.view(6, 256), residual, "residual")
    q, s = cf8.rms_norm_fp8_quant(x, weight, EPS, scale=torch.tensor([fc.STATIC_SCALE],
                                                                     device=device),
                                  num_token_padding=8)
    assert q.shape == (8, 256) and s.shape == (1,)
    assert_same_bits(q, run_rms_norm("static", x, weight, None, rows=8)[0], "static codes")
    q, s = cf8.rms_norm_fp8_quant(x, weight, EPS, group_size=GROUP_SIZE,
                                  column_major_scales=True, tma_aligned_scales=True)
    assert q.shape == (6, 256) and s.shape == (6, 2) and s.stride() == (1, 8)
    out, scale = run_rms_norm("group", x, weight, None, column_major=True)
    assert_same_bits(q, out, "group codes")
    assert_same_bits(s, scale, "group scales")

    gate_up = activation(6, 512, torch.bfloat16, device, seed=13)
    ub = torch.tensor([fc.SCALE_UB], device=device)
    q, s = cf8.silu_and_mul_fp8_quant(gate_up.view(2, 3, 512), scale_ub=ub)
    assert q.shape == (6, 256) and s.shape == (6, 1)
    assert_same_bits(q, run_silu_and_mul("per_token_ub", gate_up)[0], "silu codes")
    q, s = cf8.silu_and_mul_fp8_quant(gate_up, group_size=GROUP_SIZE, column_major_scales=True)
    assert q.shape == (6, 256) and s.stride() == (1, 6)
    for bad, arg in (({"scale": torch.ones(1, device=device), "scale_ub": ub}, "scale_ub"),
                     ({"scale": torch.ones(1, device=device), "group_size": 128}, "group_size"),
                     ({"scale_ub": ub, "group_size": 128}, "scale_ub")):
        with pytest.raises(ValueError, match=f"'{arg}'"):
            cf8.silu_and_mul_fp8_quant(gate_up, **bad)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mode", fc.MODES)
def test_zero_rows(device, mode):
    """M = 0 writes nothing, padding rows aside."""
    x = torch.empty(0, 256, dtype=torch.bfloat16, device=device)
    weight = torch.ones(256, dtype=torch.bfloat16, device=device)
    out, scale = run_rms_norm(mode, x, weight, torch.empty_like(x), rows=2)
    fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale)
    out, scale = run_silu_and_mul(mode, torch.empty(0, 512, dtype=torch.bfloat16,
                                                    device=device), rows=0)
    assert out.shape == (0, 256)


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic(device):
    """A fixed reduction order: the same input gives the same bits run to run."""
    x, weight, residual = fc.rms_norm_operands(64, 4096, torch.bfloat16, device, seed=14)
    first = run_rms_norm("per_token", x, weight, residual.clone())
    for _ in range(3):
        again = run_rms_norm("per_token", x, weight, residual.clone())
        assert_same_bits(again[0], first[0], "codes")
        assert_same_bits(again[1], first[1], "scales")


# ------------------------------------------------ tests that test the tests

def _rms_norm_without_weight(x, weight, eps, residual):
    return cpu_impl.rms_norm_in_dtype(x, torch.ones_like(weight), eps, residual)


def _rms_norm_not_rounded(x, weight, eps, residual):
    """The normalized row quantized in float32, skipping the rounding to T."""
    z = x.float()
    return z * torch.rsqrt((z * z).mean(dim=1, keepdim=True) + eps) * weight.float()


def _rms_norm_twice_rounded(x, weight, eps, residual):
    """vLLM's native RMSNorm run eagerly (and upstream's fused rms_norm quant
    kernels): T(T(z * r) * w), the normalized row rounded to T before the weight."""
    z = x.float()
    return (z * torch.rsqrt((z * z).mean(dim=1, keepdim=True) + eps)).to(x.dtype) * weight


def _rms_norm_rounded_sum(x, weight, eps, residual):
    """vLLM's CUDA fused_add_rms_norm kernel: the norm of T(sum), not of the
    float32 sum."""
    residual.copy_(x.float() + residual.float())
    return cpu_impl.rms_norm_in_dtype(residual, weight, eps, None)


@pytest.mark.parametrize("mutant", [_rms_norm_without_weight, _rms_norm_not_rounded,
                                    _rms_norm_rounded_sum, _rms_norm_twice_rounded])
@pytest.mark.parametrize("mode", ["static", "per_token", "group"])
def test_rms_norm_mutants_fail(mutant, mode):
    x, weight, residual = fc.rms_norm_operands(16, 1024, torch.bfloat16, "cpu", seed=15)
    with_residual = mutant is _rms_norm_rounded_sum
    residual_in = residual.clone()
    y = mutant(x, weight, EPS, residual if with_residual else None)
    out, scale = run_unfused(mode, y)
    with pytest.raises(AssertionError):
        fc.check_rms_norm_quant(mode, x, weight, EPS, out, scale,
                                residual_in if with_residual else None, residual)


def _silu_twice_rounded(x):
    """Eager torch F.silu(gate) * up on T tensors (upstream's CUDA
    silu_and_mul): the silu rounded to T before the product."""
    n = x.shape[1] // 2
    return torch.nn.functional.silu(x[:, :n]) * x[:, n:]


def _silu_of_up(x):
    """The halves swapped: silu(up) * gate."""
    return cpu_impl.silu_and_mul_in_dtype(torch.cat([x[:, x.shape[1] // 2:],
                                                     x[:, :x.shape[1] // 2]], dim=1))


@pytest.mark.parametrize("mutant", [_silu_twice_rounded, _silu_of_up])
@pytest.mark.parametrize("mode", ["static", "per_token", "group"])
def test_silu_and_mul_mutants_fail(mutant, mode):
    x = activation(16, 2 * 1024, torch.bfloat16, seed=16)
    out, scale = run_unfused(mode, mutant(x))
    with pytest.raises(AssertionError):
        fc.check_silu_and_mul_quant(mode, x, out, scale)
