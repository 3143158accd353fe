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
sys.path.insert(0, str(REPO / "benchmarks"))

import vllm.custom_fp8 as cf8  # noqa: E402
from upstream_block import per_block_cast_to_fp8, quant_act  # noqa: E402
from vllm.custom_fp8.numerics import rel_error  # noqa: E402


def dequant_groups(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """1x128 activation groups back to float64 ([M, K] codes, [M, K/128] scales)."""
    m, k = q.shape
    return (q.double().view(m, k // 128, 128) * s.double()[..., None]).view(m, k)


def dequant_blocks(q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """128x128 weight blocks back to float64 ([N, K] codes, [N/128, K/128] scales)."""
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
        w_f32 = dequant_blocks(*per_block_cast_to_fp8(w, use_ue8m0=False))
        # upstream's E8M0 requantization of those codes (requant_weight_ue8m0_inplace)
        w_e8m0 = dequant_blocks(*per_block_cast_to_fp8(w_f32.float(), use_ue8m0=True))
        # ours: float32 group scales; upstream's DeepGEMM path: rounded up to powers of two
        x_f32 = dequant_groups(*cf8.per_token_group_quant_fp8(x))
        x_e8m0 = dequant_groups(*quant_act(x, use_ue8m0=True, tma_aligned=False))
        row = {"model": model, "proj": proj, "n": n, "k": k, "m": args.m,
               "float32": rel_error(x_f32 @ w_f32.t(), ref),
               "e8m0": rel_error(x_e8m0 @ w_e8m0.t(), ref),
               "e8m0_weight_only": rel_error(w_e8m0, w_f32)}
        rows.append(row)
        print(f"{model:11s} {proj:13s} N={n:6d} K={k:6d}: float32 scales {row['float32']:.2e}, "
              f"E8M0 {row['e8m0']:.2e} ({row['e8m0'] / row['float32']:.2f}x); "
              f"E8M0 weight requant alone {row['e8m0_weight_only']:.2e}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"m": args.m, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
