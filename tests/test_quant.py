# SPDX-License-Identifier: Apache-2.0
"""Activation quant: codes and scales bit-identical to the reference replay of
upstream vLLM 0.25.1's CUDA rules (tests/reference.py), on every backend."""

import numpy as np
import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8 import cpu as cpu_impl
from vllm.custom_fp8.numerics import FP8_MAX, PER_TOKEN_MIN_SCALE

import reference as ref
from conftest import DEVICES, FP8, activation, on_gpu_run, poisoned

ops = torch.ops._custom_fp8
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
# Hidden sizes: tails (1, 17, 100), vector multiples, and model sizes.
HIDDEN = [1, 17, 100, 128, 384, 3584, 4096]
ROWS = [1, 3, 64, 129]


def codes(t: torch.Tensor) -> np.ndarray:
    return t.view(torch.uint8).cpu().numpy()


def assert_codes_equal(got: torch.Tensor, expected: np.ndarray):
    g = codes(got)
    bad = np.argwhere(g != expected)
    assert bad.size == 0, f"{len(bad)} codes differ, first at {bad[0].tolist()}: " \
                          f"got {g[tuple(bad[0])]:#04x}, expected {expected[tuple(bad[0])]:#04x}"


def assert_scales_equal(got: torch.Tensor, expected):
    np.testing.assert_array_equal(got.cpu().numpy().reshape(np.shape(expected)), expected)


def hidden_sizes():
    return HIDDEN + ([14336, 18944] if on_gpu_run() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", HIDDEN)
@pytest.mark.parametrize("m,pad", [(1, 0), (3, 0), (64, 0), (129, 0), (5, 8)])
def test_static_quant(device, dtype, k, m, pad):
    x = activation(m, k, dtype, device, seed=k + m)
    scale = torch.tensor([0.0173], device=device)
    out = poisoned((m + pad, k), FP8, device)
    ops.static_scaled_fp8_quant(out, x, scale)
    assert_codes_equal(out, ref.static_quant(x, 0.0173, rows=m + pad))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", HIDDEN)
@pytest.mark.parametrize("m,pad", [(1, 0), (64, 0), (129, 0), (5, 8)])
def test_dynamic_per_tensor_quant(device, dtype, k, m, pad):
    x = activation(m, k, dtype, device, seed=2 * k + m)
    out = poisoned((m + pad, k), FP8, device)
    scale = poisoned((1,), torch.float32, device)
    ops.dynamic_scaled_fp8_quant(out, x, scale)
    want_codes, want_scale = ref.dynamic_tensor_quant(x, rows=m + pad)
    assert_scales_equal(scale, np.array([want_scale]))
    assert_codes_equal(out, want_codes)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", HIDDEN)
@pytest.mark.parametrize("m,pad", [(1, 0), (3, 0), (64, 0), (129, 0), (5, 8)])
@pytest.mark.parametrize("scale_ub", [None, 0.05])
def test_per_token_quant(device, dtype, k, m, pad, scale_ub):
    x = activation(m, k, dtype, device, seed=3 * k + m)
    out = poisoned((m + pad, k), FP8, device)
    scale = poisoned((m + pad, 1), torch.float32, device)
    ub = None if scale_ub is None else torch.tensor([scale_ub], device=device)
    ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, ub)
    want_codes, want_scales = ref.per_token_quant(x, scale_ub, rows=m + pad)
    assert_scales_equal(scale, want_scales)
    assert_codes_equal(out, want_codes)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [128, 384, 3584, 4096])
@pytest.mark.parametrize("m,pad", [(1, 0), (3, 0), (64, 0), (129, 0), (5, 8)])
@pytest.mark.parametrize("layout", ["row", "col", "col_tma"])
def test_group_quant(device, dtype, k, m, pad, layout):
    x = activation(m, k, dtype, device, seed=4 * k + m)
    rows, groups = m + pad, k // 128
    strides = {"row": (groups, 1), "col": (1, rows),
               "col_tma": (1, (rows + 3) // 4 * 4)}[layout]
    out = poisoned((rows, k), FP8, device)
    scale = poisoned((rows, groups), torch.float32, device, strides=strides)
    ops.per_token_group_fp8_quant(out, x, scale, 128)
    want_codes, want_scales = ref.group_quant(x, rows=rows)
    assert_scales_equal(scale, want_scales)
    assert_codes_equal(out, want_codes)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k", [4096, 14336, 18944])
@pytest.mark.parametrize("m", [1, 16, 1000])
def test_model_hidden_sizes(device, k, m):
    """Every mode at the models' hidden sizes (K of the four projections)."""
    if device == "cpu" and m * k > 4_000_000:
        pytest.skip("covered on the GPU run")
    x = activation(m, k, torch.bfloat16, device, seed=m + k)
    q, s = cf8.scaled_fp8_quant(x, use_per_token_if_dynamic=True)
    want_codes, want_scales = ref.per_token_quant(x)
    assert_scales_equal(s, want_scales)
    assert_codes_equal(q, want_codes)
    q, s = cf8.per_token_group_quant_fp8(x, column_major_scales=True, tma_aligned_scales=True)
    want_codes, want_scales = ref.group_quant(x)
    assert_scales_equal(s, want_scales)
    assert_codes_equal(q, want_codes)
    q, s = cf8.scaled_fp8_quant(x)
    want_codes, want_scale = ref.dynamic_tensor_quant(x)
    assert_codes_equal(q, want_codes)


@pytest.mark.parametrize("device", DEVICES)
def test_strided_and_unaligned_rows(device):
    """Row strides > K and rows that do not start 16-byte aligned take the
    element-wise path and still match."""
    base = activation(7, 300, torch.bfloat16, device, seed=11)
    for x in (base[:, :256], base[:, 3:259], base[:, 1:]):
        out = poisoned(x.shape, FP8, device)
        scale = poisoned((x.shape[0], 1), torch.float32, device)
        ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
        want_codes, want_scales = ref.per_token_quant(x)
        assert_scales_equal(scale, want_scales)
        assert_codes_equal(out, want_codes)
        out = poisoned(x.shape, FP8, device)
        ops.static_scaled_fp8_quant(out, x, torch.tensor([0.01], device=device))
        assert_codes_equal(out, ref.static_quant(x, 0.01))


def special_values(dtype, device):
    """Rows with NaN, +-inf, an all-zero row, signed zeros and huge values."""
    x = activation(6, 256, torch.float32, "cpu", seed=5)
    x[0, 3], x[0, 100] = float("nan"), float("-nan")
    x[1, 7], x[1, 8] = float("inf"), float("-inf")
    x[2] = 0.0
    x[3, :128] = -0.0
    x[4, 5] = 3e38 if dtype != torch.float16 else 6e4
    x[5] = float("nan")
    return x.to(dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(device, dtype):
    """NaN, inf and all-zero rows behave as upstream's kernels make them
    (docs/numerics.md): NaN codes become +448 (-448 in group quant), an
    all-zero row gets the minimum scale and zero codes, never NaN scales."""
    x = special_values(dtype, device)
    out = poisoned(x.shape, FP8, device)
    scale = poisoned((6, 1), torch.float32, device)
    ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
    want_codes, want_scales = ref.per_token_quant(x)
    assert_scales_equal(scale, want_scales)
    assert_codes_equal(out, want_codes)
    assert scale[2].item() == PER_TOKEN_MIN_SCALE and codes(out)[2].max() == 0
    assert codes(out)[0, 3] == 0x7E  # NaN -> +448

    out = poisoned(x.shape, FP8, device)
    gscale = poisoned((6, 2), torch.float32, device)
    ops.per_token_group_fp8_quant(out, x, gscale, 128)
    want_codes, want_scales = ref.group_quant(x)
    assert_scales_equal(gscale, want_scales)
    assert_codes_equal(out, want_codes)
    assert codes(out)[0, 3] == 0xFE  # NaN -> -448 in this kernel

    for rows in (x, x[2:3]):  # with inf (scale inf) and all-zero (scale 0)
        out = poisoned(rows.shape, FP8, device)
        tscale = poisoned((1,), torch.float32, device)
        ops.dynamic_scaled_fp8_quant(out, rows, tscale)
        want_codes, want_scale = ref.dynamic_tensor_quant(rows)
        assert_scales_equal(tscale, np.array([want_scale]))
        assert_codes_equal(out, want_codes)


def all_bit_patterns(dtype) -> torch.Tensor:
    bits = torch.arange(-(2**15), 2**15, dtype=torch.int32).to(torch.int16)
    return bits.view(dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("scale", [1.0, 0.37, 2.0**-8, 3.1e-5, 1000.0])
def test_exhaustive_static_conversion(device, dtype, scale):
    """Every bf16/fp16 bit pattern (NaN and inf included) through static quant."""
    x = all_bit_patterns(dtype).reshape(256, 256).to(device)
    out = poisoned(x.shape, FP8, device)
    ops.static_scaled_fp8_quant(out, x, torch.tensor([scale], device=device))
    assert_codes_equal(out, ref.static_quant(x, scale))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_exhaustive_dynamic_conversion(device, dtype):
    """Every finite bf16/fp16 pattern through the dividing kernels (per-token
    rows of 256 and 128-groups): each row and group gets its own scale."""
    x = all_bit_patterns(dtype)
    x = x[torch.isfinite(x.float())]
    x = x[: x.numel() // 256 * 256].reshape(-1, 256).to(device)
    out = poisoned(x.shape, FP8, device)
    scale = poisoned((x.shape[0], 1), torch.float32, device)
    ops.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
    want_codes, want_scales = ref.per_token_quant(x)
    assert_scales_equal(scale, want_scales)
    assert_codes_equal(out, want_codes)
    out = poisoned(x.shape, FP8, device)
    gscale = poisoned((x.shape[0], 2), torch.float32, device)
    ops.per_token_group_fp8_quant(out, x, gscale, 128)
    want_codes, want_scales = ref.group_quant(x)
    assert_scales_equal(gscale, want_scales)
    assert_codes_equal(out, want_codes)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rows(device):
    """M = 0 is a no-op that returns empty results (documented)."""
    x = torch.empty(0, 64, dtype=torch.bfloat16, device=device)
    q, s = cf8.scaled_fp8_quant(x, use_per_token_if_dynamic=True)
    assert q.shape == (0, 64) and s.shape == (0, 1)
    q, s = cf8.scaled_fp8_quant(x)
    assert q.shape == (0, 64) and s.item() == 0.0


# Tests that test the tests: deliberately wrong variants of the CPU kernel
# must fail the same comparisons.
def _per_token_with_reciprocal(out, input, scale, scale_ub):
    x = input.float()
    s = torch.clamp_min(x.abs().amax(dim=1, keepdim=True) / FP8_MAX, PER_TOKEN_MIN_SCALE)
    scale.copy_(s)
    out.copy_(torch.clamp(x * torch.reciprocal(s), -FP8_MAX, FP8_MAX).to(FP8))


def _per_token_without_min_scale(out, input, scale, scale_ub):
    x = input.float()
    s = x.abs().amax(dim=1, keepdim=True) / FP8_MAX
    scale.copy_(s)
    out.copy_(torch.clamp(x / s, -FP8_MAX, FP8_MAX).to(FP8))


@pytest.mark.parametrize("mutant", [_per_token_with_reciprocal, _per_token_without_min_scale])
def test_mutants_fail(mutant):
    x = special_values(torch.bfloat16, "cpu")[1:5]
    x = torch.cat([x, activation(64, 256, seed=9)])
    out, scale = poisoned(x.shape, FP8, "cpu"), poisoned((x.shape[0], 1), torch.float32, "cpu")
    mutant(out, x, scale, None)
    want_codes, want_scales = ref.per_token_quant(x)
    with pytest.raises(AssertionError):
        assert_scales_equal(scale, want_scales)
        assert_codes_equal(out, want_codes)
    # and the real kernel passes on the same input
    cpu_impl.dynamic_per_token_scaled_fp8_quant(out, x, scale, None)
    assert_codes_equal(out, want_codes)
