# SPDX-License-Identifier: Apache-2.0
"""block_scaled_mm: 1x128 activation groups x 128x128 weight blocks against
the float64 reference from the same codes (acceptance rule: gemm_check.py)."""

import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8._library import EXTENSION_PATH, block_scaled_mm_configs, wave_configs

import reference as ref
from conftest import (DEVICES, HAS_CUDA_KERNELS, activation, log_uniform, model_shapes,
                      on_gpu_run, poisoned, random_fp8, without_k_block)
from gemm_check import check_gemm

ops = torch.ops._custom_fp8
# The CUDA library's configurations, by id (-1: its dispatch)
CONFIGS = block_scaled_mm_configs() if EXTENSION_PATH.exists() else []
WAVE_CONFIGS = wave_configs(block_scaled=True) if EXTENSION_PATH.exists() else []
needs_cuda_library = pytest.mark.skipif(not (HAS_CUDA_KERNELS and cf8.CUDA_BACKEND == "cuda"),
                                        reason="needs the sm_90a library on a GPU")


def make_operands(m, n, k, device, seed=0, tma_aligned=True):
    """Activations through the real group quant (column-major scales, as the
    engine feeds the GEMM); a block-quantized weight with log-uniform scales."""
    x = activation(m, k, torch.bfloat16, device, seed=seed)
    a, scale_a = cf8.per_token_group_quant_fp8(x, column_major_scales=True,
                                               tma_aligned_scales=tma_aligned)
    w = random_fp8(n, k, device, seed=seed + 1)
    weight_scale_inv = log_uniform(((n + 127) // 128, k // 128), 1e-4, 1e-2, device, seed + 2)
    return a, w.t(), scale_a, weight_scale_inv.t()


def run_and_check(m, n, k, device, out_dtype=torch.bfloat16, seed=0, tma_aligned=True,
                  config=-1):
    a, b, sa, sb = make_operands(m, n, k, device, seed, tma_aligned)
    out = poisoned((m, n), out_dtype, device)
    ops.block_scaled_mm(out, a, b, sa, sb, config)
    check_gemm(out, ref.block_scaled_mm(a, b, sa, sb), ref.block_scaled_mm_abs(a, b, sa, sb), k)


def m_sweep():
    return list(range(1, 70)) + [96, 127, 128, 255, 256, 1000] + \
        ([4096, 16384] if on_gpu_run() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m", m_sweep())
def test_m_sweep(device, m):
    run_and_check(m, 272, 512, device, out_dtype=[torch.bfloat16, torch.float16][m % 2], seed=m,
                  tma_aligned=m % 3 != 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [16, 128, 144, 400])
def test_partial_weight_blocks(device, n):
    """N not a multiple of 128: the last weight block is partial."""
    run_and_check(33, n, 256, device, seed=n)
    run_and_check(256, n, 256, device, seed=n + 1)


def shape_cases():
    ms = (1, 16, 64, 256, 1024, 4096) if on_gpu_run() else (1, 16)
    return [(name, n, k, m) for name, n, k in model_shapes() for m in ms]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name,n,k,m", shape_cases())
def test_model_shapes(device, name, n, k, m):
    if device == "cpu" and n * k > 60_000_000:
        pytest.skip("the widest layers are covered on the GPU run")
    run_and_check(m, n, k, device, seed=m + k)


@needs_cuda_library
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("m,n,k", [(1, 272, 1024), (37, 400, 512), (300, 528, 2048),
                                   (64, 512, 18944), (2048, 1040, 1024)])
@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
def test_every_config(config, m, n, k, out_dtype):
    """Every compiled configuration, not only the ones the dispatch picks:
    ragged M and N tails (a partial last weight block), activation scales
    with and without a 16-byte aligned column stride, the longest K, more
    tiles than SMs (the wave GEMM's CTAs take several each)."""
    run_and_check(m, n, k, "cuda", out_dtype, seed=m + k, tma_aligned=m % 3 != 0,
                  config=CONFIGS.index(config))


@needs_cuda_library
@pytest.mark.parametrize("config", WAVE_CONFIGS)
@pytest.mark.parametrize("name,n,k", model_shapes())
@pytest.mark.parametrize("m", [128, 300, 2048])
def test_wave_model_shapes(config, name, n, k, m):
    """The block-scaled wave GEMM on every projection, K up to 28672 (each
    128-deep k-block's scale product applied at its promotion): one tile,
    a ragged one, several per CTA in bands along M."""
    run_and_check(m, n, k, "cuda", seed=m + n + k, config=config)


@pytest.mark.parametrize("device", DEVICES)
def test_row_major_activation_scales_rejected(device):
    a, b, sa, sb = make_operands(8, 128, 256, device)
    with pytest.raises((ValueError, RuntimeError), match="'scale_a'"):
        ops.block_scaled_mm(torch.empty(8, 128, dtype=torch.bfloat16, device=device), a, b,
                            sa.contiguous(), sb)


MUTATIONS = {
    "skip one K block": lambda a, b, sa, sb: (
        without_k_block(a), b, sa, sb),
    "shift the activation group scales": lambda a, b, sa, sb: (a, b, sa.roll(1, 1), sb),
    "shift the weight block scales": lambda a, b, sa, sb: (a, b, sa, sb.roll(1, 1)),
}


@pytest.mark.parametrize("device,config", [("cpu", -1)] + [
    pytest.param("cuda", c, marks=needs_cuda_library) for c in [-1] + WAVE_CONFIGS])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutations_fail(device, config, mutation):
    m, n, k = 40, 384, 1024
    a, b, sa, sb = make_operands(m, n, k, device, seed=31)
    want, want_abs = ref.block_scaled_mm(a, b, sa, sb), ref.block_scaled_mm_abs(a, b, sa, sb)
    out = poisoned((m, n), torch.bfloat16, device)
    ma, mb, msa, msb = MUTATIONS[mutation](a, b, sa, sb)
    ops.block_scaled_mm(out, ma, mb, msa.t().contiguous().t() if msa is not sa else sa,
                        msb.t().contiguous().t() if msb is not sb else sb, config)
    with pytest.raises(AssertionError):
        check_gemm(out, want, want_abs, k)
    ops.block_scaled_mm(out, a, b, sa, sb, config)
    check_gemm(out, want, want_abs, k)
