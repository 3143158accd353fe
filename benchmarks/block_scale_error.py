# SPDX-License-Identifier: Apache-2.0
"""Block FP8's two scale formats against float64, on the CPU: float32 scales
(the checkpoint's weight_scale_inv and amax / 448 activation groups: ours and
upstream's CUTLASS block path) and E8M0 scales (powers of two rounded up:
upstream's DeepGEMM / FlashInfer default on Hopper, VLLM_USE_DEEP_GEMM_E8M0=1,
which also requantizes the checkpoint weight to its power-of-two block scales).

Only the quantization differs between the two (the GEMMs accumulate to within
1e-6 of float64 either way, docs/numerics.md), so this measures it exactly:
float64 products of the dequantized codes against the float64 product of the
bf16 activation and the float weight, with the STANDARDS metric.

    python benchmarks/block_scale_error.py [--m 64] [--out results.json]
"""

import argparse
import json
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vllm.custom_fp8.numerics import FP8_DTYPE, FP8_MAX, GROUP_EPS, rel_error  # noqa: E402


def power_of_two_up(scale: torch.Tensor) -> torch.Tensor:
    """upstream's E8M0 rounding of a scale (per_token_group_quant_fp8 and
    per_block_cast_to_fp8 with use_ue8m0=True): 2^ceil(log2(s))."""
    return torch.exp2(torch.ceil(torch.log2(scale)))


def quant_groups(x: torch.Tensor, e8m0: bool) -> torch.Tensor:
    """1x128 activation groups, dequantized (float64)."""
    m, k = x.shape
    g = x.float().view(m, k // 128, 128)
    s = g.abs().amax(-1, keepdim=True).clamp(min=GROUP_EPS) / FP8_MAX
    s = power_of_two_up(s) if e8m0 else s
    q = (g / s).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE)
    return (q.double() * s.double()).view(m, k)


def quant_blocks(w: torch.Tensor, min_amax: float, e8m0: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """128x128 weight blocks: (codes, scales), the scales [N/128, K/128]."""
    n, k = w.shape
    b = w.float().view(n // 128, 128, k // 128, 128)
    s = b.abs().amax(dim=(1, 3), keepdim=True).clamp(min=min_amax) / FP8_MAX
    s = power_of_two_up(s) if e8m0 else s
    return (b / s).clamp(-FP8_MAX, FP8_MAX).to(FP8_DTYPE).view(n, k), s.view(n // 128, k // 128)


def dequant_blocks(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return q.double() * s.double().repeat_interleave(128, 0).repeat_interleave(128, 1)


def shapes():
    spec = json.loads((REPO / "data" / "shapes.json").read_text())
    for model, m in spec["models"].items():
        for proj, s in m["layers"].items():
            yield model, proj, s["n"], s["k"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--m", type=int, default=64)
    p.add_argument("--out")
    args = p.parse_args()
    torch.manual_seed(0)
    rows = []
    for model, proj, n, k in shapes():
        w = torch.randn(n, k) * 0.02  # the layer's float weight
        # activations with token scales spread over e^[-2, 2], as the layer benchmark's
        x = (torch.randn(args.m, k) * torch.exp(torch.empty(args.m, 1).uniform_(-2, 2))).to(torch.bfloat16)
        ref = x.double() @ w.double().t()
        # the checkpoint: float32 block scales (what a block-FP8 checkpoint ships)
        wq, ws = quant_blocks(w, 0.0, e8m0=False)
        w_f32 = dequant_blocks(wq, ws)
        # upstream's E8M0 requantization of those codes (requant_weight_ue8m0_inplace)
        w_e8m0 = dequant_blocks(*quant_blocks(w_f32, 1e-4, e8m0=True))
        row = {"model": model, "proj": proj, "n": n, "k": k, "m": args.m,
               "float32": rel_error(quant_groups(x, False) @ w_f32.t(), ref),
               "e8m0": rel_error(quant_groups(x, True) @ w_e8m0.t(), ref),
               "e8m0_weight_only": rel_error(w_e8m0, w_f32)}
        rows.append(row)
        print(f"{model:11s} {proj:13s} N={n:6d} K={k:6d}: float32 scales {row['float32']:.2e}, "
              f"E8M0 {row['e8m0']:.2e} ({row['e8m0'] / row['float32']:.2f}x); "
              f"E8M0 weight requant alone {row['e8m0_weight_only']:.2e}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"m": args.m, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
