#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every CUDA op of the library over a shape sweep, for compute-sanitizer
(tools/gpu/run.sh sanitize runs it under memcheck, racecheck and synccheck):

    compute-sanitizer --tool memcheck --error-exitcode 1 python3 tools/gpu/sanitize.py [--quick]

Shapes: M = 1, ragged M (3, 77, 129), N and K with tails of the 16-element
alignment (N = 4096 + 16, K = 1024 + 48), each GEMM configuration forced
(config = 0, 1, ... until the op refuses the index) plus the dispatch, both
output dtypes, bias; quant in every mode (scale_ub, padding rows,
row/column/TMA-aligned group scales), the fused RMSNorm / SiLU-and-mul
producers in each mode; the largest model shapes (K = 18944)
once. --quick (racecheck, synccheck: they are slow on shared-memory-heavy
kernels) keeps one shape per op and every configuration at M = 77.
Each call is checked against a float64 reference too, so an op that
silently does nothing fails here as well.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import vllm.custom_fp8 as cf8  # noqa: E402
from vllm.custom_fp8._library import scaled_mm_configs  # noqa: E402
from vllm.custom_fp8.cpu import rms_norm_in_dtype  # noqa: E402

FP8 = torch.float8_e4m3fn
DEV = "cuda"


def fp8(rows, cols, seed):
    g = torch.Generator(DEV).manual_seed(seed)
    return (torch.randn(rows, cols, device=DEV, generator=g) * 100).clamp(-448, 448).to(FP8)


def check_gemm(out, a, b, sa, sb, bias=None):
    ref = (a.double() * sa.double()) @ (b.double() * sb.double().reshape(1, -1))
    if bias is not None:
        ref += bias.double()
    err = (out.double() - ref).norm() / ref.norm()
    assert err < 1e-2, f"GEMM rel error {err:.3g}"


def sweep_quant(shapes):
    for m, k in shapes:
        x = torch.randn(m, k, device=DEV, dtype=torch.bfloat16) * 3
        q, s = cf8.scaled_fp8_quant(x, use_per_token_if_dynamic=True,
                                    scale_ub=torch.tensor([2.0], device=DEV))
        cf8.scaled_fp8_quant(x, num_token_padding=m + 5)
        q, s = cf8.scaled_fp8_quant(x)
        cf8.scaled_fp8_quant(x, s)
        assert (q.float() * s - x.float()).abs().max() <= 448 * s / 16 + 1e-3
        if k % 128 == 0:
            for col, tma in ((False, False), (True, False), (True, True)):
                cf8.per_token_group_quant_fp8(x, column_major_scales=col, tma_aligned_scales=tma)
        if k % 16 == 0:
            sweep_fused_producers(x, s)


def sweep_fused_producers(x, static_scale):
    """The fused RMSNorm / SiLU-and-mul -> FP8 kernels, each mode, against the
    unfused pair (same codes: docs/numerics.md)."""
    m, k = x.shape
    w = torch.rand(k, device=DEV, dtype=torch.bfloat16) + 0.5
    residual = torch.randn_like(x)
    q, _ = cf8.rms_norm_fp8_quant(x, w, 1e-6, residual=residual.clone())
    cf8.rms_norm_fp8_quant(x, w, 1e-6, scale=static_scale)
    gate_up = torch.randn(m, 2 * k, device=DEV, dtype=torch.bfloat16)
    cf8.silu_and_mul_fp8_quant(gate_up)
    cf8.silu_and_mul_fp8_quant(gate_up, scale=static_scale)
    if k % 128 == 0:
        cf8.rms_norm_fp8_quant(x, w, 1e-6, group_size=128, column_major_scales=True)
        cf8.silu_and_mul_fp8_quant(gate_up, group_size=128, column_major_scales=True,
                                   tma_aligned_scales=True)
    # the unfused pair: vLLM's native fused-add RMSNorm (the CPU backend's
    # producer, plain torch, here on the GPU), then our quant
    normed = rms_norm_in_dtype(x, w, 1e-6, residual.clone())
    ref, _ = cf8.scaled_fp8_quant(normed, use_per_token_if_dynamic=True)
    agree = (q.view(torch.uint8) == ref.view(torch.uint8)).float().mean().item()
    assert agree > 0.999, f"fused RMSNorm quant agrees with the unfused pair on {agree:.4%}"


def sweep_scaled_mm(shapes, all_configs):
    for m, n, k in shapes:
        a, b = fp8(m, k, 1), fp8(n, k, 2).t()
        sa = torch.rand(m, 1, device=DEV) * 1e-2 + 1e-3
        sb = torch.rand(n, device=DEV) * 1e-2 + 1e-3
        bias = torch.randn(n, device=DEV, dtype=torch.bfloat16)
        configs = [-1] + (list(range(len(scaled_mm_configs()))) if all_configs else [])
        for config in configs:
            out = cf8.scaled_mm(a, b, sa, sb, torch.bfloat16, bias=bias, config=config)
            check_gemm(out, a, b, sa, sb, bias)
        out = cf8.scaled_mm(a, b, sa[:1, :1].reshape(1), sb[:1], torch.float16)
        check_gemm(out, a, b, sa[:1, :1], sb[:1].expand(n))


def sweep_block_scaled_mm(shapes):
    for m, n, k in shapes:
        a, b = fp8(m, k, 3), fp8(n, k, 4).t()
        sa = (torch.rand(k // 128, m, device=DEV) * 1e-2 + 1e-3).t()        # column-major
        sb = (torch.rand(n // 128, k // 128, device=DEV) * 1e-2 + 1e-3).t()  # weight_scale_inv.t()
        out = cf8.block_scaled_mm(a, b, sa, sb, torch.bfloat16)
        ref = ((a.double().view(m, k // 128, 128) * sa.double()[:, :, None]).view(m, k)
               @ (b.double().view(k // 128, 128, n // 128, 128)
                  * sb.double()[:, None, :, None]).view(k, n))
        assert (out.double() - ref).norm() / ref.norm() < 1e-2


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    assert cf8.CUDA_BACKEND == "cuda", cf8.CUDA_BACKEND
    t = time.perf_counter()
    if args.quick:
        sweep_quant([(77, 4096 + 48)])
        sweep_scaled_mm([(77, 1024 + 16, 1024 + 48)], all_configs=True)
        sweep_block_scaled_mm([(77, 1024, 1024)])
    else:
        sweep_quant([(1, 4096), (3, 4096 + 8), (77, 14336), (129, 18944), (1024, 4096)])
        sweep_scaled_mm([(1, 4096 + 16, 1024 + 48), (77, 4096 + 16, 1024 + 48),
                         (129, 1024, 4096), (1024, 1024 + 16, 1024)], all_configs=True)
        sweep_scaled_mm([(1, 4096, 18944), (4096, 7168, 4096)], all_configs=False)
        sweep_block_scaled_mm([(1, 4096, 1024), (3, 1024, 4096), (77, 4096, 18944),
                               (1024, 1024, 1024)])
    torch.cuda.synchronize()
    print(f"SANITIZE sweep done in {time.perf_counter() - t:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
