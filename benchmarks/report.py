# SPDX-License-Identifier: Apache-2.0
"""Tables and plots from a bench_fp8_linear.py JSON (made here, not on the GPU).

    python benchmarks/report.py benchmarks/results/h100.json --md docs/benchmarks.md \
        --plots docs/img
    python benchmarks/report.py benchmarks/results/h200.json --md /tmp/h200.md   # an earlier run

Speed-ups are baseline time / our time (above 1: ours is faster); "% floor"
is the roofline floor / time with every byte over the copy bandwidth, "% read
floor" (runs that measured a read stream) with the bytes read over the
read-stream bandwidth and the bytes written over the copy bandwidth.
Upstream's whole layer is `vllm_eager_token` (its per-token quant kernel +
CUTLASS), the comparison the targets use; upstream's block-FP8 layer on
Hopper is `vllm_default_block` (FlashInfer below M = 32, DeepGEMM above).
"""

import argparse
import json
import math
import os
import statistics
from collections import defaultdict
from pathlib import Path

OURS = "ours_cuda_token"
BASELINES = {
    "vllm_eager_token": "upstream eager (per-token quant + CUTLASS)",
    "vllm_compiled_token": "upstream compiled (Inductor quant + CUTLASS)",
    # Upstream serves online FP8 on the H100 with per-token activations (its
    # selection log, docs/e2e-h100.md), i.e. vllm_compiled_token; this one is
    # the per-tensor alternative, and its large-M quant is suspect
    # (docs/performance.md), so the plots leave it out.
    "vllm_online_tensor": "Inductor per-tensor quant + CUTLASS",
    "cublas_tensor": "cuBLASLt per-tensor, our quant",
    "cublas_rowwise": "cuBLASLt row-wise, our quant",
    "bf16": "bf16 (unquantized)",
}


def load(path: str) -> tuple[dict, dict]:
    data = json.loads(Path(path).read_text())
    table = defaultdict(dict)  # (model, proj, tp, m) -> method -> row
    for r in data["rows"]:
        table[(r["model"], r["proj"], r["tp"], r["m"])][r["method"]] = r
    return data["meta"], table


def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def speedup(rows: dict, ours: str, base: str) -> float | None:
    if ours in rows and base in rows:
        return rows[base]["t_graph_us"] / rows[ours]["t_graph_us"]
    return None


def spread(row: dict) -> str:
    runs = row["t_graph_runs_us"]
    return f"{min(runs):.1f}-{max(runs):.1f}"


def summary(table: dict) -> list[str]:
    lines = []
    ups = [s for rows in table.values() if (s := speedup(rows, OURS, "vllm_eager_token"))]
    if ups:
        lines.append(f"- Whole layer vs upstream (per-token quant + CUTLASS): geometric mean "
                     f"**{geomean(ups):.2f}x** over {len(ups)} points, min {min(ups):.2f}x, "
                     f"max {max(ups):.2f}x (target: >= 1.30x, none below 1.0x).")
    for label, lo, hi, target in (("M <= 64", 1, 64, 85), ("M = 256", 256, 256, 75),
                                  ("M >= 1024", 1024, 10**9, 80)):
        pct = [rows[OURS]["pct_floor"] for (_, _, _, m), rows in table.items()
               if lo <= m <= hi and OURS in rows]
        if pct:
            lines.append(f"- {label}: {min(pct):.0f}-{max(pct):.0f}% of the roofline floor, "
                         f"median {statistics.median(pct):.0f}% (target >= {target}%).")
    cub = [s for (_, _, _, m), rows in table.items() if m >= 1024
           and (s := speedup(rows, OURS, "cublas_tensor"))]
    if cub:
        lines.append(f"- M >= 1024 vs cuBLASLt fed by our quant: median {statistics.median(cub):.2f}x "
                     "(target >= 1.0x).")
    bf = [s for (_, _, _, m), rows in table.items() if m == 1 and (s := speedup(rows, OURS, "bf16"))]
    if bf:
        lines.append(f"- M = 1 vs bf16: {min(bf):.2f}-{max(bf):.2f}x (target >= 1.8x everywhere).")
    for tp, target in ((1, 85), (2, 75)):
        pct = [rows[OURS]["pct_floor_read"] for (_, _, t, m), rows in table.items()
               if m <= 64 and t == tp and "pct_floor_read" in rows.get(OURS, {})]
        if pct:
            lines.append(f"- M <= 64, TP={tp}: {min(pct):.0f}-{max(pct):.0f}% of the read floor, "
                         f"median {statistics.median(pct):.0f}% (target: median >= {target}%, "
                         "every point >= 60%).")
    blk = [s for rows in table.values() if (s := speedup(rows, "ours_cuda_block", "vllm_block"))]
    if blk:
        lines.append(f"- Block FP8 vs upstream's CUTLASS block path: geometric mean {geomean(blk):.2f}x, "
                     f"min {min(blk):.2f}x (target >= 1.3x, none below 1.0x).")
    q = [rows["quant_ours_token"]["t_graph_us"] and
         rows["copy"]["t_graph_us"] / rows["quant_ours_token"]["t_graph_us"]
         for (_, _, _, m), rows in table.items()
         if m >= 1024 and "quant_ours_token" in rows and "copy" in rows]
    if q:
        lines.append(f"- Per-token quant alone at M >= 1024: {100 * min(q):.0f}-{100 * max(q):.0f}% "
                     "of a same-size device copy (target >= 90%).")
    # none in a run without the layer group
    return ["## Summary against the targets", ""] + lines + [""] if lines else []


def layer_table(table: dict) -> list[str]:
    cols = list(BASELINES)
    read = any("pct_floor_read" in rows.get(OURS, {}) for rows in table.values())
    head = ["model", "layer", "tp", "M", "floor µs", "ours µs (spread)", "% floor"] \
        + (["% read floor"] if read else []) + ["ours Triton µs"] + [f"÷ {c}" for c in cols]
    table_rows = []
    for (model, proj, tp, m), rows in sorted(table.items()):
        if OURS not in rows:
            continue
        o = rows[OURS]
        tri = rows.get("ours_triton_token", {}).get("t_graph_us")
        cells = [model, proj, str(tp), str(m), f"{o['floor_us']:.1f}",
                 f"{o['t_graph_us']:.1f} ({spread(o)})", f"{o['pct_floor']:.0f}%"] \
            + ([f"{o['pct_floor_read']:.0f}%"] if read else []) + [f"{tri:.1f}" if tri else "-"]
        cells += [f"{s:.2f}" if (s := speedup(rows, OURS, c)) else "-" for c in cols]
        table_rows.append("| " + " | ".join(cells) + " |")
    if not table_rows:
        return []
    return (["## Whole layer (bf16 in -> FP8 quant -> GEMM -> bf16 out), t_graph", "",
             "`÷ X` = X's time / ours (above 1: ours is faster). Times are medians of "
             "interleaved repeats; the spread is min-max over the repeats.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + table_rows + [""])


def component_table(table: dict) -> list[str]:
    head = ["model", "layer", "tp", "M", "GEMM ours µs", "GEMM upstream µs", "÷",
            "quant ours µs", "quant upstream µs", "copy µs", "quant % of copy",
            "block ours µs", "block upstream µs", "÷ block"]
    table_rows = []

    def t(rows, k):
        return rows[k]["t_graph_us"] if k in rows else None

    for (model, proj, tp, m), rows in sorted(table.items()):
        g_o, g_u = t(rows, "gemm_ours_token"), t(rows, "gemm_vllm_token")
        q_o, q_u, cp = t(rows, "quant_ours_token"), t(rows, "quant_vllm_token"), t(rows, "copy")
        b_o, b_u = t(rows, "ours_cuda_block"), t(rows, "vllm_block")
        if not any((g_o, g_u, q_o, q_u, cp, b_o, b_u)):
            continue
        f = lambda x: f"{x:.1f}" if x else "-"  # noqa: E731
        r = lambda a, b: f"{a / b:.2f}" if a and b else "-"  # noqa: E731
        table_rows.append("| " + " | ".join([
            model, proj, str(tp), str(m), f(g_o), f(g_u), r(g_u, g_o), f(q_o), f(q_u), f(cp),
            f"{100 * cp / q_o:.0f}%" if cp and q_o else "-", f(b_o), f(b_u), r(b_u, b_o)]) + " |")
    if not table_rows:
        return []
    return (["## Components: the GEMM alone, the per-token quant alone, block FP8", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + table_rows + [""])


WAVE_TABLES = {  # the wave GEMM's columns: (title, baseline columns, the target's baseline, from M)
    "gemm_wave_": ("Compute-bound M: the wave GEMM (our main loop)",
                   {"GEMM dispatched": "gemm_ours_token", "GEMM upstream": "gemm_vllm_token"},
                   "upstream's FastAccum GEMM", 512),
    "gemm_block_wave_": ("Block FP8, compute-bound M: the wave GEMM block-scaled",
                         {"GEMM CUTLASS block": "gemm_ours_block",
                          "GEMM DeepGEMM f32": "gemm_deepgemm_f32_block"},
                         "DeepGEMM (float32 scales, the same codes)", 128),
}


def wave_table(table: dict, prefix: str) -> list[str]:
    """Compute-bound M: the wave GEMM's configurations (columns `prefix`*)
    beside the GEMMs they race (WAVE_TABLES), with TFLOP/s."""
    title, baselines, target, from_m = WAVE_TABLES[prefix]
    keys = [k for k, rows in sorted(table.items()) if any(n.startswith(prefix) for n in rows)]
    if not keys:
        return []
    head = (["model", "layer", "tp", "M", "configuration", "µs (spread)", "TFLOP/s"]
            + [f"÷ {b}" for b in baselines])
    rows_md, vs_target = [], []
    for key in keys:
        rows = table[key]
        for name in sorted(n for n in rows if n.startswith(prefix)):
            o = rows[name]
            ratios = [speedup(rows, name, column) for column in baselines.values()]
            if ratios[-1] and key[3] >= from_m:
                vs_target.append(ratios[-1])
            rows_md.append("| " + " | ".join(
                [key[0], key[1], str(key[2]), str(key[3]), name.removeprefix(prefix),
                 f"{o['t_graph_us']:.1f} ({spread(o)})", f"{o['tflops']:.0f}"]
                + [f"{r:.2f}" if r else "-" for r in ratios]) + " |")
    summary = ([f"- vs {target} at M >= {from_m}: geometric mean "
                f"**{geomean(vs_target):.2f}x**, min {min(vs_target):.2f}x over "
                f"{len(vs_target)} (configuration, shape) points."] if vs_target else [])
    return ([f"## {title}", "",
             "`÷ X` = X's time / the wave GEMM's (above 1: ours is faster).", ""] + summary
            + [""] + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + rows_md + [""])


BLOCK_OURS = "ours_cuda_block"
BLOCK_BASELINES = {
    "vllm_default_block": "upstream's Hopper default (FlashInfer M < 32, DeepGEMM, E8M0)",
    "deepgemm_f32_block": "upstream's group quant + DeepGEMM, float32 scales",
    "vllm_block": "upstream's CUTLASS block path",
}


def block_table(table: dict) -> list[str]:
    """Block FP8 against upstream's real Hopper default (bench group "block"
    with the DeepGEMM / FlashInfer bundle)."""
    keys = [k for k, rows in sorted(table.items())
            if BLOCK_OURS in rows and "vllm_default_block" in rows]
    if not keys:
        return []
    head = (["model", "layer", "tp", "M", "ours µs (spread)", "% read floor"]
            + [f"÷ {c}" for c in BLOCK_BASELINES] + ["GEMM ours µs", "÷ GEMM DeepGEMM f32"])
    rows_md, by_m = [], defaultdict(list)
    for key in keys:
        rows = table[key]
        o, g = rows[BLOCK_OURS], rows.get("gemm_ours_block")
        ratios = [speedup(rows, BLOCK_OURS, c) for c in BLOCK_BASELINES]
        by_m[key[3]].append(ratios[0])
        g_dg = speedup(rows, "gemm_ours_block", "gemm_deepgemm_f32_block")
        rows_md.append("| " + " | ".join(
            [key[0], key[1], str(key[2]), str(key[3]), f"{o['t_graph_us']:.1f} ({spread(o)})",
             f"{o['pct_floor_read']:.0f}%" if "pct_floor_read" in o else "-"]
            + [f"{r:.2f}" if r else "-" for r in ratios]
            + [f"{g['t_graph_us']:.1f}" if g else "-", f"{g_dg:.2f}" if g_dg else "-"]) + " |")
    every = [r for rs in by_m.values() for r in rs]
    summary = [f"- Ours vs upstream's default: geometric mean **{geomean(every):.2f}x** over "
               f"{len(every)} points, min {min(every):.2f}x, below 0.97x at "
               f"{sum(r < 0.97 for r in every)} (target: >= 1.15x where the fork is selected, "
               "none below 1.0x)."]
    summary += [f"- M = {m}: {geomean(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"
                for m, rs in sorted(by_m.items())]
    return (["## Block FP8 (128x128 weight blocks, 1x128 activation groups) against upstream's "
             "Hopper default", "",
             "`÷ X` = X's time / ours (above 1: ours is faster); every method is its whole "
             "layer (bf16 in, its own group quant, GEMM, bf16 out) except the GEMM columns "
             "(the same codes from our group quant).", ""] + summary + [""]
            + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + rows_md + [""])


SPLITK = "ours_splitk_token"


def splitk_table(table: dict) -> list[str]:
    """Decode (M <= 64): our quant + the split-K GEMM (splitk_64xTx128)
    beside the dispatched layer and upstream's, against the read floor; and
    the GEMMs alone (gemm_vllm_token: upstream's FastAccum CUTLASS)."""
    keys = [k for k, rows in sorted(table.items()) if SPLITK in rows]
    if not keys:
        return []
    head = ["model", "layer", "tp", "M", "read floor µs", "split-K µs (spread)", "% read floor",
            "dispatched µs", "% read floor", "÷ dispatched", "÷ upstream eager",
            "GEMM split-K µs", "÷ GEMM dispatched", "÷ GEMM upstream", "weight read alone µs",
            "its % read floor", "GEMM, weight in L2 µs"]
    rows_md, pct, vs_up, gemm_vs_up = [], defaultdict(list), [], []
    for key in keys:
        rows = table[key]
        o, d = rows[SPLITK], rows.get(OURS)
        g = rows.get("gemm_ours_splitk")
        up, g_up = speedup(rows, SPLITK, "vllm_eager_token"), speedup(
            rows, "gemm_ours_splitk", "gemm_vllm_token")
        pct[key[2]].append(o["pct_floor_read"])
        if up:
            vs_up.append(up)
        if g_up and key[3] <= 16:
            gemm_vs_up.append(g_up)
        f = lambda r: f"{r:.2f}" if r else "-"  # noqa: E731
        rows_md.append("| " + " | ".join(
            [key[0], key[1], str(key[2]), str(key[3]), f"{o['floor_read_us']:.1f}",
             f"{o['t_graph_us']:.1f} ({spread(o)})", f"{o['pct_floor_read']:.0f}%",
             f"{d['t_graph_us']:.1f}" if d else "-",
             f"{d['pct_floor_read']:.0f}%" if d else "-", f(speedup(rows, SPLITK, OURS)), f(up),
             f"{g['t_graph_us']:.1f}" if g else "-",
             f(speedup(rows, "gemm_ours_splitk", "gemm_ours_token")), f(g_up),
             f"{rd['t_graph_us']:.1f}" if (rd := rows.get("read_weight")) else "-",
             f"{rd['pct_floor_read']:.0f}%" if rd else "-",
             f"{l2['t_graph_us']:.1f}" if (l2 := rows.get("gemm_ours_token_l2")) else "-"]) + " |")
    summary = [f"- TP={tp}: {min(ps):.0f}-{max(ps):.0f}% of the read floor, median "
               f"**{statistics.median(ps):.0f}%** (target: median >= {85 if tp == 1 else 75}%, "
               "every point >= 60%)." for tp, ps in sorted(pct.items())]
    if vs_up:
        summary.append(f"- vs upstream eager: geometric mean **{geomean(vs_up):.2f}x**, min "
                       f"{min(vs_up):.2f}x (target >= 1.25x, none below 1.0x).")
    reads = defaultdict(list)
    for key in keys:
        if "read_weight" in table[key]:
            reads[key[2]].append(table[key]["read_weight"]["pct_floor_read"])
    summary += [f"- A pure read of each weight alone (cold, in a graph like the layers): median "
                f"{statistics.median(ps):.0f}% of the read floor at TP={tp} ({min(ps):.0f}-"
                f"{max(ps):.0f}%): the most any kernel of these shapes can reach."
                for tp, ps in sorted(reads.items())]
    if gemm_vs_up:
        summary.append(f"- GEMM alone at M <= 16 vs upstream's FastAccum GEMM: min "
                       f"{min(gemm_vs_up):.2f}x (target >= 1.0x everywhere).")
    return (["## Decode: the split-K GEMM (our quant + splitk_64xTx128)", "",
             "`÷ X` = X's time / split-K's (above 1: split-K is faster).", ""] + summary + [""]
            + ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + rows_md + [""])


def fused_table(table: dict) -> list[str]:
    """Producer + quant + GEMM (bench group "fused"): our fused producer against
    the unfused fork and upstream's compiled mode."""
    head = ["model", "layer", "tp", "M", "producer", "fused ours µs", "unfused ours µs",
            "÷ unfused", "upstream compiled µs", "÷ upstream", "% of floor"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    gains = {"unfused": [], "upstream": []}
    for (model, proj, tp, m), rows in sorted(table.items()):
        for producer in ("norm", "silu"):
            fused = rows.get(f"fused_ours_{producer}")
            if fused is None:
                continue
            t = lambda k: rows[k]["t_graph_us"] if k in rows else None  # noqa: E731
            f_o, u_o = fused["t_graph_us"], t(f"unfused_ours_{producer}")
            c_u = t(f"compiled_vllm_{producer}")
            r = lambda b: f"{b / f_o:.2f}" if b else "-"  # noqa: E731
            for name, base in (("unfused", u_o), ("upstream", c_u)):
                if base:
                    gains[name].append(base / f_o)
            lines.append("| " + " | ".join([
                model, proj, str(tp), str(m), producer, f"{f_o:.1f}",
                f"{u_o:.1f}" if u_o else "-", r(u_o), f"{c_u:.1f}" if c_u else "-", r(c_u),
                f"{fused['pct_floor']:.0f}%"]) + " |")
    if not gains["unfused"]:
        return []
    summary = [f"- {what}: geometric mean **{geomean(g):.2f}x** over {len(g)} points, "
               f"min {min(g):.2f}x, max {max(g):.2f}x"
               for what, g in (("fused vs the unfused fork", gains["unfused"]),
                               ("fused vs upstream's compiled mode", gains["upstream"])) if g]
    return (["## Producer + quant + GEMM: the fused producers (issue 8)", ""] + summary + [""]
            + lines + [""])


def plots(table: dict, outdir: Path, md_dir: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    outdir.mkdir(parents=True, exist_ok=True)
    series = defaultdict(lambda: defaultdict(list))  # (model, proj, tp) -> base -> [(m, s)]
    for (model, proj, tp, m), rows in table.items():
        for base in (b for b in BASELINES if b != "vllm_online_tensor"):
            if (s := speedup(rows, OURS, base)):
                series[(model, proj, tp)][base].append((m, s))
    keys = sorted(series)
    fig, axes = plt.subplots(math.ceil(len(keys) / 4), 4, figsize=(20, 4 * math.ceil(len(keys) / 4)),
                             squeeze=False)
    for ax, key in zip(axes.flat, keys):
        for base, pts in series[key].items():
            pts.sort()
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=base)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.set_ylim(0.5, 4)
        ax.set_title(f"{key[0]} {key[1]} tp{key[2]}")
        ax.set_xlabel("M (tokens)")
        ax.set_ylabel("speed-up of ours")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(outdir / "speedup_vs_m.png", dpi=80)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5))
    for method, style in ((OURS, "o"), ("vllm_eager_token", "x"), ("cublas_tensor", "+")):
        pts = [(m, rows[method]["pct_floor"]) for (_, _, _, m), rows in table.items()
               if method in rows]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=style, label=method)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("M (tokens)")
    ax.set_ylabel("% of the roofline floor")
    ax.legend()
    fig.tight_layout()
    fig.savefig(outdir / "roofline.png", dpi=80)
    plt.close(fig)
    link = lambda name: os.path.relpath(outdir / name, md_dir)  # noqa: E731
    return [f"![speed-up vs M]({link('speedup_vs_m.png')})", "",
            f"![% of roofline floor]({link('roofline.png')})", ""]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("json")
    p.add_argument("--md", required=True)
    p.add_argument("--plots", help="directory for the PNG plots")
    args = p.parse_args()
    meta, table = load(args.json)
    # A results file may join the runs of several device calls (meta["runs"]):
    # each row's floor then uses the ceilings of its own run.
    runs = meta.get("runs", [meta])
    ceilings = "; ".join(f"device copy {r['copy_bw_Bps'] / 1e9:.0f} GB/s, "
                         + (f"read stream {r['read_bw_Bps'] / 1e9:.0f} GB/s, "
                            if "read_bw_Bps" in r else "")
                         + f"FP8 GEMM peak {r['fp8_peak_flops'] / 1e12:.0f} TFLOP/s" for r in runs)
    commands = "; ".join(f"`python benchmarks/bench_fp8_linear.py"
                         f"{''.join(' ' + a for a in r.get('argv', []))}` ({r['date']})"
                         for r in runs)
    lines = ["# FP8 linear layer benchmark", "",
             f"Measured {' and '.join(r['date'] for r in runs)} on {meta['device']} "
             f"({meta['nvidia_smi']}), torch "
             f"{meta['torch']}, CUDA {meta['cuda']}, Triton {meta['triton']}, custom_fp8 backend "
             f"`{meta['custom_fp8_backend']}`, commit `{meta['commit']}`. Ceilings measured in "
             f"{'each' if len(runs) > 1 else 'the same'} run: {ceilings}.",
             f"Command: {commands} (see its docstring for the method); "
             f"raw data: `{Path(args.json).name}`.", ""]
    lines += summary(table)
    if args.plots:
        lines += plots(table, Path(args.plots), Path(args.md).parent)
    lines += (layer_table(table) + splitk_table(table) + wave_table(table, "gemm_wave_")
              + wave_table(table, "gemm_block_wave_") + component_table(table)
              + fused_table(table) + block_table(table))
    Path(args.md).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
