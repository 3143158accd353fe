# SPDX-License-Identifier: Apache-2.0
"""scaled_mm: out = scale_a * (scale_b * (a @ b)) + bias against the float64
reference from the same FP8 codes (acceptance rule: tests/gemm_check.py)."""

import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8._library import EXTENSION_PATH, scaled_mm_configs, wave_configs

import reference as ref
from conftest import (DEVICES, HAS_CUDA_KERNELS, log_uniform, model_shapes, on_gpu_run, poisoned,
                      random_fp8, without_k_block)
from gemm_check import check_gemm

ops = torch.ops._custom_fp8
OUT_DTYPES = [torch.bfloat16, torch.float16]
SCALE_MODES = [("tensor", "tensor"), ("tensor", "channel"), ("token", "tensor"), ("token", "channel")]


def make_operands(m, n, k, device, a_mode, b_mode, with_bias, out_dtype, seed=0, ldb=None):
    a = random_fp8(m, k, device, seed=seed)
    # b is the transpose of a row-major [N, K] weight (how vLLM keeps it);
    # ldb > K makes it a view into a wider weight.
    w = random_fp8(n, ldb or k, device, seed=seed + 1)[:, :k]
    b = w.t()
    scale_a = log_uniform((m, 1) if a_mode == "token" else (1,), 1e-3, 1e-1, device, seed + 2)
    scale_b = log_uniform((n,) if b_mode == "channel" else (1,), 1e-3, 1e-1, device, seed + 3)
    bias = (torch.randn(n, generator=torch.Generator().manual_seed(seed + 4)).to(out_dtype)
            .to(device) if with_bias else None)
    return a, b, scale_a, scale_b, bias


def run_and_check(m, n, k, device, a_mode, b_mode, with_bias, out_dtype, seed=0, ldb=None,
                  config=-1):
    a, b, sa, sb, bias = make_operands(m, n, k, device, a_mode, b_mode, with_bias, out_dtype, seed,
                                       ldb)
    out = poisoned((m, n), out_dtype, device)
    cf8.scaled_mm(a, b, sa, sb, out_dtype, bias, out=out, config=config)
    check_gemm(out, ref.scaled_mm(a, b, sa, sb, bias), ref.scaled_mm_abs(a, b, sa, sb), k)


def m_sweep():
    return list(range(1, 128)) + [128, 255, 256, 1000] + ([4096, 16384] if on_gpu_run() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", m_sweep())
def test_m_sweep(device, m):
    """Every M bucket and tail; the scale modes, bias and dtypes rotate with M."""
    a_mode, b_mode = SCALE_MODES[m % 4]
    run_and_check(m, 176, 256, device, a_mode, b_mode, with_bias=m % 3 == 0,
                  out_dtype=OUT_DTYPES[m % 2], seed=m)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("a_mode,b_mode", SCALE_MODES)
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
@pytest.mark.parametrize("m", [1, 16, 37, 64, 100, 300])
def test_scale_modes(device, a_mode, b_mode, with_bias, out_dtype, m):
    run_and_check(m, 272, 384, device, a_mode, b_mode, with_bias, out_dtype, seed=7 * m)


def shape_cases():
    cases = [(name, n, k, m) for name, n, k in model_shapes() for m in (1, 16)]
    if on_gpu_run():
        cases += [(name, n, k, m) for name, n, k in model_shapes()
                  for m in (64, 256, 1024, 4096)]
    return cases


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,n,k,m", shape_cases())
@pytest.mark.parametrize("config", [-1, -2], ids=["dispatch", "analytic"])
def test_model_shapes(device, name, n, k, m, config):
    """Llama-3-8B and Qwen2.5-7B projections, TP=1 and TP=2 shards; K up to
    18944. Qwen2's qkv_proj carries a bias. On the GPU both the dispatch
    (the tuned table there) and its analytic model alone (config -2)."""
    if device == "cpu" and (n * k > 60_000_000 or config == -2):
        pytest.skip("the widest layers and the analytic model are covered on the GPU run")
    with_bias = name.startswith("qwen") and "qkv" in name
    run_and_check(m, n, k, device, "token", "channel", with_bias, torch.bfloat16, seed=m + n,
                  config=config)


@pytest.mark.skipif(not (HAS_CUDA_KERNELS and cf8.CUDA_BACKEND == "cuda"),
                    reason="needs the sm_90a library on a GPU")
@pytest.mark.parametrize("config", scaled_mm_configs() if EXTENSION_PATH.exists() else [])
@pytest.mark.parametrize("m,n,k", [(1, 272, 1040), (37, 1040, 528), (300, 528, 2064),
                                   (64, 512, 18944)])
@pytest.mark.parametrize("out_dtype", OUT_DTYPES)
def test_every_config(config, m, n, k, out_dtype):
    """Every compiled configuration, not only the ones the dispatch picks:
    ragged M, N and K tails (against 16-512 wide tiles and 128/256-deep
    k-tiles) and the longest K, with per-token, per-channel scales and a bias."""
    run_and_check(m, n, k, "cuda", "token", "channel", True, out_dtype, seed=m + k,
                  config=scaled_mm_configs().index(config))


SPLITK_CONFIGS = ([c for c in scaled_mm_configs() if c.startswith("splitk_")]
                  if EXTENSION_PATH.exists() else [])


@pytest.mark.skipif(not (HAS_CUDA_KERNELS and cf8.CUDA_BACKEND == "cuda"),
                    reason="needs the sm_90a library on a GPU")
@pytest.mark.parametrize("config", SPLITK_CONFIGS)
@pytest.mark.parametrize("name,n,k", model_shapes())
@pytest.mark.parametrize("m", [1, 13, 64])
def test_splitk_model_shapes(config, name, n, k, m):
    """The split-K decode kernel on every projection: the K split it takes
    from the shape (a cluster of 1 or 2 CTAs on 132 SMs; test_every_config's
    narrow shapes reach 8), one or several token groups."""
    with_bias = name.startswith("qwen") and "qkv" in name
    run_and_check(m, n, k, "cuda", "token", "channel", with_bias, torch.bfloat16, seed=m + n + k,
                  config=scaled_mm_configs().index(config))


@pytest.mark.skipif(not (HAS_CUDA_KERNELS and cf8.CUDA_BACKEND == "cuda"),
                    reason="needs the sm_90a library on a GPU")
@pytest.mark.parametrize("config", wave_configs() if EXTENSION_PATH.exists() else [])
@pytest.mark.parametrize("name,n,k", model_shapes())
@pytest.mark.parametrize("m", [128, 300, 2048])
def test_wave_model_shapes(config, name, n, k, m):
    """The wave GEMM on every projection, K up to 28672 (the promotion every
    128 of K against float64): one tile (half empty at 256 rows), a ragged
    one, several per CTA in bands along M."""
    with_bias = name.startswith("qwen") and "qkv" in name
    run_and_check(m, n, k, "cuda", "token", "channel", with_bias, torch.bfloat16, seed=m + n + k,
                  config=config)


@pytest.mark.parametrize("device", DEVICES)
def test_strided_operands(device):
    """a with a row stride > K, b a view of a wider weight (ldb > K)."""
    a_wide = random_fp8(24, 320, device, seed=3)
    for a in (a_wide[:, :256], a_wide[:, 64:]):
        k = a.shape[1]
        _, b, sa, sb, bias = make_operands(24, 96, k, device, "token", "channel", True,
                                           torch.bfloat16, seed=5, ldb=k + 32)
        out = poisoned((24, 96), torch.bfloat16, device)
        ops.scaled_mm(out, a, b, sa, sb, bias)
        check_gemm(out, ref.scaled_mm(a, b, sa, sb, bias), ref.scaled_mm_abs(a, b, sa, sb), k)


@pytest.mark.parametrize("device", DEVICES)
def test_fp16_overflow(device):
    """Results past float16's range become +-inf of the right sign, the rest
    stay exact: as a float32 epilogue rounding to fp16 does upstream."""
    m, n, k = 8, 32, 128
    signs = torch.tensor([1.0, -1.0]).repeat(m // 2).reshape(m, 1)
    a = (448.0 * signs).expand(m, k).to(torch.float8_e4m3fn).to(device)
    b = torch.full((n, k), 448.0).to(torch.float8_e4m3fn).to(device).t()
    sa = torch.ones(m, 1, device=device)
    # |out| = 448^2 * 128 * sb: 2.6e4 .. 5.1e4 (finite), then 1.0e5 .. 2.1e5 (inf)
    sb = torch.linspace(1e-3, 2e-3, n, device=device)
    sb[n // 2:] *= 4
    out = poisoned((m, n), torch.float16, device)
    ops.scaled_mm(out, a, b, sa, sb, None)
    want = ref.scaled_mm(a, b, sa, sb)
    assert torch.isinf(out).any() and torch.isfinite(out).any()
    check_gemm(out, want, ref.scaled_mm_abs(a, b, sa, sb), k)


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rows(device):
    a, b, sa, sb, _ = make_operands(1, 32, 64, device, "tensor", "channel", False, torch.bfloat16)
    out = cf8.scaled_mm(a[:0], b, sa, sb, torch.bfloat16)
    assert out.shape == (0, 32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,n,arg", [(40, 32, "a"), (64, 40, "b")])
def test_unaligned_k_n_rejected(device, k, n, arg):
    """K and N must be multiples of 16 (TMA rows); the error names the operand."""
    a, b, sa, sb, _ = make_operands(3, n, k, device, "tensor", "tensor", False, torch.bfloat16)
    with pytest.raises((ValueError, RuntimeError), match=f"'{arg}'"):
        ops.scaled_mm(torch.empty(3, n, dtype=torch.bfloat16, device=device), a, b, sa, sb, None)


# Tests that test the tests: results of the real kernel on deliberately
# wrong operands must fail the acceptance check against the true reference.
MUTATIONS = {
    "skip one K block": lambda a, b, sa, sb, bias: (
        without_k_block(a), b, sa, sb, bias),
    "shift scale_a by one row": lambda a, b, sa, sb, bias: (a, b, sa.roll(1, 0), sb, bias),
    "shift scale_b by one column": lambda a, b, sa, sb, bias: (a, b, sa, sb.roll(1, 0), bias),
    "drop the bias": lambda a, b, sa, sb, bias: (a, b, sa, sb, None),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutations_fail(device, mutation):
    m, n, k = 48, 160, 1024
    a, b, sa, sb, bias = make_operands(m, n, k, device, "token", "channel", True,
                                       torch.bfloat16, seed=21)
    bias = bias * 8  # a bias the size of the products, so dropping it shows
    want, want_abs = ref.scaled_mm(a, b, sa, sb, bias), ref.scaled_mm_abs(a, b, sa, sb)
    out = poisoned((m, n), torch.bfloat16, device)
    ops.scaled_mm(out, *MUTATIONS[mutation](a, b, sa, sb, bias))
    with pytest.raises(AssertionError):
        check_gemm(out, want, want_abs, k)
    ops.scaled_mm(out, a, b, sa, sb, bias)
    check_gemm(out, want, want_abs, k)
