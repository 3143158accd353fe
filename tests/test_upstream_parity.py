# SPDX-License-Identifier: Apache-2.0
"""Against upstream vLLM 0.25.1's own CUDA ops (its _C_stable_libtorch,
loaded from VLLM_UPSTREAM_C; tools/gpu/run.sh sets it on the GPU machine):
quant codes and scales bit-identical in every mode, GEMM error against the
float64 reference no larger than upstream's CUTLASS kernels'."""

import os

import numpy as np
import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8.numerics import FP8_MAX, GROUP_EPS, rel_error

import reference as ref
from conftest import (FP8, HAS_CUDA_KERNELS, activation, log_uniform, model_shapes, poisoned,
                      random_fp8)
from test_quant import all_bit_patterns, assert_codes_equal, special_values

UPSTREAM_C = os.environ.get("VLLM_UPSTREAM_C")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not (HAS_CUDA_KERNELS and UPSTREAM_C and os.path.exists(UPSTREAM_C)),
                       reason="needs the GPU and upstream vLLM's _C (VLLM_UPSTREAM_C)"),
]


@pytest.fixture(scope="module")
def upstream():
    torch.ops.load_library(UPSTREAM_C)
    return torch.ops._C


def _finite_bit_patterns(dtype):
    bits = all_bit_patterns(dtype)
    return bits[torch.isfinite(bits.float())][:65024].reshape(-1, 256).cuda()


QUANT_CASES = {"special": lambda: special_values(torch.bfloat16, "cuda")}
for _dtype in (torch.bfloat16, torch.float16, torch.float32):
    for _m, _k in ((1, 4096), (7, 3584), (64, 14336), (300, 18944), (2048, 4096), (5, 100)):
        QUANT_CASES[f"{_dtype}-{_m}x{_k}"] = (
            lambda m=_m, k=_k, d=_dtype: activation(m, k, d, "cuda", seed=m * k))
for _dtype in (torch.bfloat16, torch.float16):
    QUANT_CASES[f"all-{_dtype}"] = lambda d=_dtype: _finite_bit_patterns(d)


@pytest.mark.parametrize("case", list(QUANT_CASES))
def test_quant_bit_identical(upstream, case):
    x = QUANT_CASES[case]()
    m, k = x.shape
    # static per-tensor
    scale = torch.tensor([0.0123], device="cuda")
    ours, theirs = poisoned((m, k), FP8, "cuda"), poisoned((m, k), FP8, "cuda")
    torch.ops._custom_fp8.static_scaled_fp8_quant(ours, x, scale)
    upstream.static_scaled_fp8_quant(theirs, x, scale)
    assert_codes_equal(ours, theirs.view(torch.uint8).cpu().numpy())
    # dynamic per-tensor
    s_ours, s_theirs = poisoned((1,), torch.float32, "cuda"), poisoned((1,), torch.float32, "cuda")
    torch.ops._custom_fp8.dynamic_scaled_fp8_quant(ours, x, s_ours)
    upstream.dynamic_scaled_fp8_quant(theirs, x, s_theirs)
    assert torch.equal(s_ours, s_theirs)
    assert_codes_equal(ours, theirs.view(torch.uint8).cpu().numpy())
    # dynamic per-token, with and without scale_ub
    for ub in (None, torch.tensor([0.05], device="cuda")):
        s_ours, s_theirs = (poisoned((m, 1), torch.float32, "cuda") for _ in range(2))
        torch.ops._custom_fp8.dynamic_per_token_scaled_fp8_quant(ours, x, s_ours, ub)
        upstream.dynamic_per_token_scaled_fp8_quant(theirs, x, s_theirs, ub)
        assert torch.equal(s_ours, s_theirs)
        assert_codes_equal(ours, theirs.view(torch.uint8).cpu().numpy())
    # per-token-group, column-major scales
    if k % 128 == 0 and x.is_contiguous():
        s_ours = poisoned((m, k // 128), torch.float32, "cuda", strides=(1, m))
        s_theirs = poisoned((m, k // 128), torch.float32, "cuda", strides=(1, m))
        torch.ops._custom_fp8.per_token_group_fp8_quant(ours, x, s_ours, 128)
        upstream.per_token_group_fp8_quant(x, theirs, s_theirs, 128, GROUP_EPS, -FP8_MAX, FP8_MAX,
                                           False, False, False)
        np.testing.assert_array_equal(s_ours.cpu().numpy(), s_theirs.cpu().numpy())
        assert_codes_equal(ours, theirs.view(torch.uint8).cpu().numpy())


def gemm_errors(upstream, n, k, m, block: bool):
    a = random_fp8(m, k, "cuda", seed=n + m)
    w = random_fp8(n, k, "cuda", seed=k + m)
    if block:
        a, sa = cf8.per_token_group_quant_fp8(activation(m, k, device="cuda", seed=m),
                                              column_major_scales=True)
        sb = log_uniform(((n + 127) // 128, k // 128), 1e-4, 1e-2, "cuda").t()
        want = ref.block_scaled_mm(a, w.t(), sa, sb)
        ours = cf8.block_scaled_mm(a, w.t(), sa, sb, torch.bfloat16)
    else:
        sa = log_uniform((m, 1), 1e-3, 1e-1, "cuda")
        sb = log_uniform((n,), 1e-3, 1e-1, "cuda")
        want = ref.scaled_mm(a, w.t(), sa, sb)
        ours = cf8.scaled_mm(a, w.t(), sa, sb, torch.bfloat16)
    theirs = torch.empty_like(ours)
    upstream.cutlass_scaled_mm(theirs, a, w.t(), sa, sb, None)
    return rel_error(ours, want), rel_error(theirs, want)


@pytest.mark.parametrize("block", [False, True], ids=["per-token", "block"])
def test_gemm_error_not_above_upstream(upstream, block):
    """Summed over the model shapes and M buckets: our error metric against
    float64 is at most upstream CUTLASS's (5% slack for rounding noise)."""
    ours_total = theirs_total = 0.0
    for _, n, k in model_shapes(tp_sizes=(1,)):
        for m in (1, 16, 64, 256, 2048):
            ours, theirs = gemm_errors(upstream, n, k, m, block)
            ours_total, theirs_total = ours_total + ours, theirs_total + theirs
    assert ours_total <= 1.05 * theirs_total, (ours_total, theirs_total)
