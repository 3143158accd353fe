# SPDX-License-Identifier: Apache-2.0
"""Offline tuner of the sm_90a scaled GEMM.

Times every compiled kernel configuration (listed in the library's build
info) on every Llama-3-8B / Qwen2.5-7B projection shape (TP=1 and 2) and every
M of data/shapes.json, validated first, and writes the fastest per (N, K, M)
to csrc/quantization/custom_fp8/tuned/scaled_mm_<gpu>.json (h100, h200: the
model in the device name; the table records the full name). The next build
compiles every table into the dispatch (scaled_mm_dispatch.cu), which uses
the one whose device name is the current GPU's; shapes it does not cover, and
GPUs without a table, use the analytic model.

    python benchmarks/tune_scaled_mm.py            # on the GPU (tools/gpu/run.sh tune)
"""

import argparse
import json
import math
import os
import re
import statistics
import time
from pathlib import Path

import torch

from bench_fp8_linear import REPO, model_shapes, rel_error, time_graphs

import vllm.custom_fp8 as cf8
from vllm.custom_fp8._library import scaled_mm_configs

FP8 = torch.float8_e4m3fn
TUNED_DIR = REPO / "csrc" / "quantization" / "custom_fp8" / "tuned"
SPAN_BYTES = 200e6
# Timed beside the configurations: the op's dispatch (config -1: the tuned
# table of this GPU if the library has one, else the analytic model) and the
# analytic model alone (-2).
DISPATCH = {"dispatch": -1, "analytic": -2}


# Each doubling of the K depth between float32 promotions (128 -> 256 -> 512)
# must buy this much speed: at equal speed the more accurate kernel wins.
LONGER_PROMOTION_MARGIN = 0.02


def promotes_every_k(config: str) -> int:
    """K depth between float32 promotions (scaled_mm_sm90_configs.cuh): N for
    a *_promoteN variant, else the k-tile (the last number of the tile)."""
    promote = re.search(r"_promote(\d+)$", config)
    return int(promote[1]) if promote else int(re.search(r"x(\d+)(_|$)", config)[1])


def fastest(times: dict[str, float]) -> str:
    def weighted(name: str) -> float:
        doublings = math.log2(promotes_every_k(name) / 128)
        return times[name] * (1 + LONGER_PROMOTION_MARGIN) ** doublings
    return min((name for name in times if name not in DISPATCH), key=weighted)


def table_name(device: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'h100', 'NVIDIA H200' -> 'h200'."""
    return device.lower().removeprefix("nvidia ").split()[0]


def plausible(config: str, m: int) -> bool:
    """Skips configurations that cannot win (and would only burn GPU time)."""
    if config.startswith("splitk_"):  # re-reads the weight per group of its tokens
        return m <= 128
    if config.startswith("wave_256x"):  # two waves: 0.57x upstream at M = 512 (9ed9949)
        return m >= 1024
    if config.startswith("wave_"):  # one 128-row wave
        return m >= 128
    if config.startswith("swap_"):
        return m <= 256
    if "64x128x128" in config:
        return 32 <= m <= 2048
    return m >= 32


def tune_shape(n: int, k: int, ms: list[int], configs: list[str], repeats: int) -> list[dict]:
    g = torch.Generator(device="cuda").manual_seed(n + k)
    copies = max(1, int(SPAN_BYTES // (n * k)) + 1)
    weights = [torch.randn(n, k, device="cuda", generator=g).to(FP8) for _ in range(copies)]
    scale_b = torch.rand(n, device="cuda", generator=g) * 1e-2 + 1e-3
    entries = []
    for m in ms:
        a = torch.randn(m, k, device="cuda", generator=g).to(FP8)
        scale_a = torch.rand(m, 1, device="cuda", generator=g) * 1e-2 + 1e-3
        ref = (a.double() * scale_a.double()) @ (weights[0].double() * scale_b.double()[:, None]).t()
        out = torch.empty(m, n, dtype=torch.bfloat16, device="cuda")
        fns = {}
        for cid, name in enumerate(configs + list(DISPATCH)):
            if name not in DISPATCH and not plausible(name, m):
                continue
            config = DISPATCH.get(name, cid)

            def fn(i, config=config):
                return cf8.scaled_mm(a, weights[i % copies].t(), scale_a, scale_b,
                                     torch.bfloat16, out=out, config=config)
            if rel_error(fn(0), ref) < 1e-5:
                fns[name] = fn
            else:
                print(f"INVALID n={n} k={k} m={m} {name}")
        times = {name: statistics.median(ts) * 1e6
                 for name, ts in time_graphs(fns, copies, repeats).items()}
        best = fastest(times)
        entries.append({"n": n, "k": k, "m": m, "config": best,
                        "us": {name: round(t, 2) for name, t in times.items()}})
        print(f"n={n} k={k} m={m}: best {best} {times[best]:.1f} us "
              f"(dispatch {times['dispatch']:.1f} us, analytic {times['analytic']:.1f} us)",
              flush=True)
    return entries


def slowdown(entries: list[dict], name: str) -> str:
    """Geometric mean and maximum of name's time over the chosen one's."""
    ratios = [e["us"][name] / e["us"][e["config"]] for e in entries]
    return (f"{statistics.geometric_mean(ratios):.3f}x geometric mean, "
            f"{max(ratios):.2f}x max")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dir", default=str(TUNED_DIR), help="where the table is written")
    p.add_argument("--m", nargs="+", type=int,
                   help="measure these M only (default: data/shapes.json's) and keep the other "
                        "M's entries of this GPU's committed table (after a kernel change that "
                        "only these M can pick)")
    args = p.parse_args()
    device = torch.cuda.get_device_name()
    name = f"scaled_mm_{table_name(device)}.json"
    out = Path(args.dir) / name
    spec = json.loads((REPO / "data" / "shapes.json").read_text())
    configs = scaled_mm_configs()
    shapes = sorted({(s.n, s.k) for s in model_shapes(
        ["llama-3-8b", "qwen2.5-7b"], ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], [1, 2])})
    base, merged_from = [], None
    if args.m and (TUNED_DIR / name).exists():
        table = json.loads((TUNED_DIR / name).read_text())
        base = table["entries"]
        merged_from = f"{table['commit']} ({table['date']}): the entries not measured here"
    entries = []
    for n, k in shapes:
        entries += tune_shape(n, k, args.m or spec["m"], configs, args.repeats)
        tuned = {(e["n"], e["k"]) for e in entries}
        kept = [e for e in base if (e["n"], e["k"]) not in tuned or e["m"] not in args.m]
        out.write_text(json.dumps({  # after every shape: a cut-off run keeps its part
            "device": device,
            "commit": os.environ.get("CUSTOM_FP8_COMMIT", "unknown"),
            "date": time.strftime("%Y-%m-%d"),
            "configs": configs,
            "note": "fastest configuration per (n, k, m) of the GEMM alone (bf16 out, per-token "
                    "x per-channel scales); the dispatch uses it for M up to m",
            **({"merged_from": merged_from} if merged_from else {}),
            "entries": sorted(entries + kept, key=lambda e: (e["n"], e["k"], e["m"])),
        }, indent=1))
    for name in DISPATCH:
        print(f"{name} over the chosen configuration: {slowdown(entries, name)}")


if __name__ == "__main__":
    main()
