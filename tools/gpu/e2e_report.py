#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Markdown tables (and a throughput plot) from what tools/gpu/e2e.sh returns:

    python3 tools/gpu/e2e_report.py DIR [--plot docs/img/e2e_throughput.png]

DIR holds any of fidelity.json, profile.json, load.json, throughput.json.
Prints the tables; docs/e2e-h100.md keeps them with the commit and device.
"""

import argparse
import json
from pathlib import Path


def fidelity_table(report: dict) -> list[str]:
    lines = [f"Mean |dlogprob| over upstream's top-5 tokens at every teacher-forced position "
             f"(and top-1 agreement), against upstream's own kernel; pass: the fork within "
             f"{report['band_factor']}x the control pair's difference (and as many top-5 tokens "
             f"missing from the top-20 at most, or 5), "
             f"the same activation scheme; switched off: identical to upstream.", "",
             "| model | kind | upstream kernel | control (upstream alt.) | fork (ours) | "
             "fork compiled + fusion pass | fork switched off | scheme | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cell(d):
        if not d or "mean_abs_dlogp" not in d:
            return (d or {}).get("missing", "-")[:40]
        return f"{d['mean_abs_dlogp']:.4f} / {d['top1_agreement']:.3f}"

    for row in report["rows"]:
        up = ", ".join(k for k, _ in row.get("upstream_selected") or []) or "-"
        control = row.get("control", {})
        ctl = cell(control) + (f" ({control['selected'][0][0]})" if control.get("selected") else "")
        off = cell(row.get("fork_disabled"))
        if "disabled_identical" in row:
            off += " identical" if row["disabled_identical"] else " DIFFERENT"
        scheme = ", ".join(k.split("scale(")[1].split(")")[0] for k in row.get("fork_act_keys", []))
        fused = cell(row.get("fork_compiled_fused"))
        if "compiled_fused_verdict" in row:
            fused += f" {row['compiled_fused_verdict']}"
        lines.append(f"| {row['model']} | {row['kind']} | {up} | {ctl} | {cell(row.get('fork'))} | "
                     f"{fused} | {off} | {scheme or '-'} | {row['verdict']} |")
    return lines + [""]


def profile_table(profile: dict) -> list[str]:
    lines = ["| model | layers | fusion pass | our GEMM launches / step | our quant launches / step "
             "(fused producers) | upstream FP8 kernels | ok |", "|---|---|---|---|---|---|---|"]
    for model, r in profile.items():
        lines.append(f"| {model} | {r['layers']} | {'on' if r.get('fusion') else 'off'} | "
                     f"{r['our_gemm_launches']} (expected {r['expected_per_step']}) | "
                     f"{r['our_quant_launches']} ({r.get('fused_producer_launches', 0)}) | "
                     f"{sum(r['other_fp8_kernels'].values())} | {r['ok']} |")
    names = sorted({k for r in profile.values() for k in r["our_kernels"]})
    lines += ["", "Our kernels in the decode step (symbols, shortened):", ""]
    lines += [f"- `{n[:160]}`" for n in names]
    return lines + [""]


def step_time_table(fork: dict, upstream: dict, top: int = 12) -> list[str]:
    """GPU time of one decode step per model, and its largest kernels on each
    side (tools/gpu/e2e.py profile, --site fork and --site upstream)."""
    lines = []
    for model in sorted(fork.keys() & upstream.keys()):
        f, u = fork[model], upstream[model]
        if "decode_step_gpu_us" not in f:
            continue  # a fork profile from before the timing was recorded
        lines += [f"{model}: {f['decode_step_gpu_us']:.1f} µs (fork) vs "
                  f"{u['decode_step_gpu_us']:.1f} µs (upstream) of kernel time per decode step.",
                  "", "| side | kernel (shortened) | µs |", "|---|---|---|"]
        for side, r in (("fork", f), ("upstream", u)):
            for name, us in list(r["decode_step_kernel_us"].items())[:top]:
                lines.append(f"| {side} | `{name[:100]}` | {us:.1f} |")
        lines.append("")
    return lines


def load_table(load: dict) -> list[str]:
    b, a = load["before"], load["after"]
    gib = lambda x: f"{x / 2**30:.2f} GiB" if isinstance(x, (int, float)) else "-"  # noqa: E731
    return [
        f"- completions check: HTTP {load['check']['status']}; server healthy after "
        f"{load['ready_after_s']} s",
        f"- {load['requests']} requests, {load['concurrency']} in flight: {load['error_count']} errors, "
        f"{load['wall_s']} s, {load['requests_per_s']} req/s, {load['out_tok_s']} output tok/s; "
        f"latency p50 {load['latency_s']['p50']} s, p99 {load['latency_s']['p99']} s, "
        f"max {load['latency_s']['max']} s",
        f"- KV-cache usage before / after: {b['metrics'].get('vllm:kv_cache_usage_perc')} / "
        f"{a['metrics'].get('vllm:kv_cache_usage_perc')}; running+waiting after: "
        f"{a['metrics'].get('vllm:num_requests_running')} + "
        f"{a['metrics'].get('vllm:num_requests_waiting')}",
        f"- engine allocator (torch.cuda.memory_stats) before / after: allocated "
        f"{gib(b['allocator'].get('allocated_bytes.all.current'))} / "
        f"{gib(a['allocator'].get('allocated_bytes.all.current'))}, reserved "
        f"{gib(b['allocator'].get('reserved_bytes.all.current'))} / "
        f"{gib(a['allocator'].get('reserved_bytes.all.current'))}, alloc retries "
        f"{a['allocator'].get('num_alloc_retries')}, OOMs {a['allocator'].get('num_ooms')}",
        f"- host RSS (server + engine processes) before / after: "
        f"{gib(load['host_rss_bytes']['before'])} / {gib(load['host_rss_bytes']['after'])}", ""]


def throughput_rows(runs: dict) -> dict:
    """(workload, batch) -> {run: result}"""
    rows = {}
    for name, run in runs.items():
        for r in run["results"]:
            rows.setdefault((r["name"], r["batch"], r["in_len"], r["out_len"]), {})[name] = r
    return rows


def throughput_table(runs: dict) -> list[str]:
    lines = ["| workload | in / out | batch | bf16 out tok/s | upstream FP8 | fork FP8 | "
             "fork FP8 fused | fused, no PDL | fork / upstream FP8 | fused / upstream FP8 | "
             "fused no PDL / upstream FP8 | fork / bf16 | upstream FP8 / bf16 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name, batch, i, o), by in sorted(throughput_rows(runs).items()):
        get = lambda k: by.get(k, {}).get("out_tok_s")  # noqa: E731
        bf, up, fk = get("upstream_bf16"), get("upstream_fp8"), get("fork_fp8")
        fused, nopdl = get("fork_fused_fp8"), get("fork_fused_nopdl_fp8")
        r = lambda a, b: f"{a / b:.2f}x" if a and b else "-"  # noqa: E731
        f = lambda x: f"{x:.1f}" if x else "-"  # noqa: E731
        lines.append(f"| {name} | {i} / {o} | {batch} | {f(bf)} | {f(up)} | {f(fk)} | {f(fused)} | "
                     f"{f(nopdl)} | {r(fk, up)} | {r(fused, up)} | {r(nopdl, up)} | {r(fk, bf)} | "
                     f"{r(up, bf)} |")
    lines += ["", "Start-up (s): " + ", ".join(
        f"{k} LLM() {v.get('init_s')} (import {v.get('import_s')})" for k, v in sorted(runs.items())),
        ""]
    return lines


def throughput_plot(runs: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = throughput_rows(runs)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, workload in zip(axes, ("decode", "prefill")):
        for name, label in (("upstream_bf16", "bf16"), ("upstream_fp8", "upstream FP8"),
                            ("fork_fp8", "fork FP8"), ("fork_fused_fp8", "fork FP8, fused"),
                            ("fork_fused_nopdl_fp8", "fork FP8, fused, no PDL")):
            pts = sorted((b, by[name]["out_tok_s"]) for (w, b, _, _), by in rows.items()
                         if w == workload and name in by)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch")
        ax.set_ylabel("output tokens/s")
        ax.set_title(f"{workload} (Llama-3-8B shape, H100)")
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dir", type=Path)
    p.add_argument("--plot", type=Path)
    args = p.parse_args()
    fork_profile = (json.loads((args.dir / "profile.json").read_text())
                    if (args.dir / "profile.json").is_file() else {})
    sections = {"fidelity.json": ("Fidelity", fidelity_table),
                "profile.json": ("One decode step, profiled", profile_table),
                "profile_upstream.json": ("One decode step, GPU time: fork vs upstream",
                                          lambda up: step_time_table(fork_profile, up)),
                "load.json": ("Served load", load_table),
                "throughput.json": ("Throughput", throughput_table)}
    for file, (title, table) in sections.items():
        if (args.dir / file).is_file():
            print(f"### {title}\n")
            print("\n".join(table(json.loads((args.dir / file).read_text()))))
    if args.plot and (args.dir / "throughput.json").is_file():
        throughput_plot(json.loads((args.dir / "throughput.json").read_text()), args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
