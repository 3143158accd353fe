# SPDX-License-Identifier: Apache-2.0
"""The GPU-machine tooling, checked where there is no GPU: the device-side
scripts parse, and the report over the committed H100 results gives the
tables docs/e2e-h100.md quotes (so a runner or report change cannot silently
break the next device session)."""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "e2e"
SCRIPTS = ["tools/gpu/e2e.sh", "tools/gpu/run.sh", "tools/gpu/bundle.sh", "tools/run.sh",
           "tools/gpu/block_baselines_bundle.sh", "tools/gpu/block_env.sh",
           "tools/gpu-e2e/device.sh"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(REPO / script)], check=True)


def test_report_over_the_h100_results(tmp_path):
    for name in ("fidelity", "profile", "load", "throughput"):
        shutil.copy(RESULTS / f"{name}_h100.json", tmp_path / f"{name}.json")
    out = subprocess.run([sys.executable, str(REPO / "tools/gpu/e2e_report.py"), str(tmp_path)],
                         check=True, capture_output=True, text=True).stdout
    for title in ("### Fidelity", "### One decode step, profiled", "### Served load",
                  "### Throughput"):
        assert title in out, title
    # the rows the docs quote
    assert "| llama | fp8 | CutlassFP8ScaledMMLinearKernel |" in out
    assert "identical" in out and "| pass |" in out
    assert "| llama | 2 | on | 8 (expected 8) | 8 (6) |" in out
    assert "1000 requests, 64 in flight: 0 errors" in out
    assert "| decode | 128 / 512 | 1 | 154.6 | 232.1 | 215.3 |" in out


def test_profile_results_prove_our_kernels():
    """The committed decode-step profile: every projection's GEMM and quant
    are ours, no upstream FP8 kernel ran."""
    profile = json.loads((RESULTS / "profile_h100.json").read_text())
    assert set(profile) == {"llama", "qwen2"}
    for r in profile.values():
        assert r["ok"] and r["our_gemm_launches"] == 4 * r["layers"] and not r["other_fp8_kernels"]
        # issue 8: with the fusion pass (the default) only o_proj's input, the
        # attention output, keeps a standalone quant
        assert r["fusion"] and r["fused_producer_launches"] == 3 * r["layers"]
        assert r["standalone_quant_launches"] == r["layers"]


def test_benchmark_doc_is_the_report_of_the_results(tmp_path):
    """docs/benchmarks.md is benchmarks/report.py over the committed
    h100.json (the plots aside, which need matplotlib)."""
    out = tmp_path / "report.md"
    subprocess.run([sys.executable, str(REPO / "benchmarks/report.py"),
                    str(RESULTS.parent / "h100.json"), "--md", str(out)], check=True)
    strip = lambda text: [line for line in text.splitlines()  # noqa: E731
                          if line and not line.startswith("![")]
    assert strip(out.read_text()) == strip((REPO / "docs" / "benchmarks.md").read_text())


@pytest.mark.parametrize("results", sorted(p.name for p in (REPO / "benchmarks/results").glob("h[12]00*.json")))
def test_report_renders_every_committed_run(tmp_path, results):
    """Earlier runs live in benchmarks/results/ only (docs/ keeps the current
    report): report.py still renders each of them."""
    out = tmp_path / "report.md"
    subprocess.run([sys.executable, str(REPO / "benchmarks/report.py"),
                    str(REPO / "benchmarks/results" / results), "--md", str(out)], check=True)
    assert out.read_text().startswith("# FP8 linear layer benchmark")


def test_fidelity_report_verdicts(tmp_path, monkeypatch):
    """e2e.py fidelity-report on synthetic runs: a fork inside the control
    pair's band passes, one outside it fails, and the compiled + fusion-pass
    engine gets its own verdict against upstream."""
    monkeypatch.syspath_prepend(str(REPO / "tools" / "gpu"))
    import e2e

    def run(shift: float) -> dict:
        # one prompt of one position per prompt set, 5 tokens, every logprob moved by shift
        rows = [[{t: -float(t) - shift for t in range(5)}]]
        layer = ["model.layers.0.mlp.down_proj", "k", "QuantKey(per_token)"]
        return {"selected": [["Kernel", "Method"]], "layers": [layer],
                "logprobs": {name: rows for name in e2e.PROMPT_SETS}}

    upstream = {"llama/online/auto": run(0.0), "llama/online/torch": run(0.1)}
    for fused_shift, verdict in ((0.12, "pass"), (0.2, "FAIL")):
        fork = {"llama/online/auto": run(0.05), "llama/online/compiled_fused": run(fused_shift)}
        paths = {}
        for name, runs in (("upstream", upstream), ("fork", fork)):
            paths[name] = tmp_path / f"{name}.json"
            paths[name].write_text(json.dumps({"runs": runs}))
        rc = e2e.cmd_fidelity_report(argparse.Namespace(
            upstream=paths["upstream"], fork=paths["fork"], out=tmp_path / "report.json"))
        (row,) = json.loads((tmp_path / "report.json").read_text())["rows"]
        assert row["verdict"] == "pass"  # 0.05 against a band of 1.5 * 0.1
        assert row["compiled_fused_verdict"] == verdict
        assert rc == (0 if verdict == "pass" else 1)


def test_profile_step_time(tmp_path, monkeypatch):
    """e2e.py's trace reading sums launches and GPU time per kernel, and the
    report sets the fork's decode step beside upstream's."""
    monkeypatch.syspath_prepend(str(REPO / "tools" / "gpu"))
    import e2e

    trace = {"traceEvents": [{"cat": "kernel", "name": "gemm", "dur": 4.0},
                             {"cat": "kernel", "name": "gemm", "dur": 5.0},
                             {"cat": "kernel", "name": "quant", "dur": 1.5},
                             {"cat": "cpu_op", "name": "aten::mm", "dur": 9.0}]}
    (tmp_path / "old.json").write_text("{}")
    before = set(tmp_path.glob("*.json"))
    (tmp_path / "new.json").write_text(json.dumps(trace))
    launches, us = e2e.kernel_stats(tmp_path, before)
    assert launches == {"gemm": 2, "quant": 1} and us == {"gemm": 9.0, "quant": 1.5}

    step = {"llama": {"decode_step_gpu_us": 10.5, "decode_step_kernel_us": {"gemm": 9.0}}}
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "profile_upstream.json").write_text(json.dumps(step))
    shutil.copy(RESULTS / "profile_h100.json", report_dir / "profile.json")
    fork = json.loads((report_dir / "profile.json").read_text())
    fork["llama"].update(decode_step_gpu_us=12.0, decode_step_kernel_us={"our_gemm": 10.0})
    (report_dir / "profile.json").write_text(json.dumps(fork))
    out = subprocess.run([sys.executable, str(REPO / "tools/gpu/e2e_report.py"), str(report_dir)],
                         check=True, capture_output=True, text=True).stdout
    assert "llama: 12.0 µs (fork) vs 10.5 µs (upstream)" in out
    assert "| upstream | `gemm` | 9.0 |" in out and "| fork | `our_gemm` | 10.0 |" in out


def test_our_kernel_check(monkeypatch):
    """The fork's decode-step check: our GEMM and quant in every projection
    passes; an upstream CUTLASS GEMM in the step, or a missing quant, fails."""
    monkeypatch.syspath_prepend(str(REPO / "tools" / "gpu"))
    import collections

    import e2e

    layers = e2e.SPECS["llama"].layers
    gemm = "cutlass::device_kernel<custom_fp8::sm90::NamedKernel<GemmUniversal<...>>>"
    step = collections.Counter({gemm: 4 * layers,
                                "custom_fp8::rms_norm_quant_kernel<...>": 2 * layers,
                                "custom_fp8::silu_and_mul_quant_kernel<...>": layers,
                                "custom_fp8::per_token_quant_kernel<...>": layers})
    assert e2e.our_kernel_check("llama", step, fusion=True)["ok"]
    upstream_gemm = step + collections.Counter({"cutlass::Kernel2<vllm::cutlass_3x_gemm>": 1})
    assert not e2e.our_kernel_check("llama", upstream_gemm, fusion=True)["ok"]
    missing_quant = step - collections.Counter({"custom_fp8::per_token_quant_kernel<...>": 1})
    assert not e2e.our_kernel_check("llama", missing_quant, fusion=True)["ok"]


def test_tuner_prefers_the_more_accurate_kernel(monkeypatch):
    """A configuration promoting to float32 less often wins only where it is
    faster by the margin per doubling of its promotion depth."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import tune_scaled_mm as tune

    assert [tune.promotes_every_k(c) for c in
            ("swap_128x16x128_streamk", "swap_64x16x256", "swap_64x16x256_promote512",
             "tile_128x128x128_promote256")] == [128, 256, 512, 256]
    margin = 1 + tune.LONGER_PROMOTION_MARGIN
    times = {"swap_128x16x128_streamk": 10.0, "swap_64x16x256": 10.0 / margin + 0.01,
             "swap_64x16x256_promote512": 10.0 / margin**2 + 0.01, "dispatch": 1.0}
    assert tune.fastest(times) == "swap_128x16x128_streamk"
    times["swap_64x16x256"] -= 0.02
    assert tune.fastest(times) == "swap_64x16x256"
    times["swap_64x16x256_promote512"] -= 0.03
    assert tune.fastest(times) == "swap_64x16x256_promote512"
    assert tune.table_name("NVIDIA H100 80GB HBM3") == "h100"
    assert tune.table_name("NVIDIA H200") == "h200"


def test_compare_gives_the_analytic_model_gain():
    """benchmarks/compare.py over the two committed H200 runs of the analytic
    dispatch (before and after its refit): the speed-up docs/performance.md
    quotes."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks/compare.py"),
                          str(REPO / "benchmarks/results/h200_analytic_b329fc2.json"),
                          str(REPO / "benchmarks/results/h200_analytic.json"),
                          "--methods", "gemm_ours_token", "ours_cuda_token"],
                         check=True, capture_output=True, text=True).stdout
    assert "gemm_ours_token M 1-64: 1.081x (0.99-1.77, 56 points)" in out
    assert "ours_cuda_token M 1-64: 1.066x (0.99-1.57, 56 points)" in out
    assert "of 240 common points got more than 5% slower" in out


def test_ncu_table_pairs_cases_with_kernels(tmp_path):
    """tools/gpu/ncu_table.py over a raw page of ncu's: a row per case in
    launch order, the metrics asked for, stall columns only where some case
    stalls on them; a case list that does not pair up is refused."""
    header = ["ID", "Kernel Name", "gpu__time_duration.sum",
              "sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active",
              "smsp__average_warps_issue_stalled_barrier_per_issue_active.ratio",
              "smsp__average_warps_issue_stalled_long_scoreboard_per_issue_active.ratio"]
    rows = [header, ["", "", "us", "%", "", ""],
            ["0", "wave_mm_kernel", "1,520.3", "81.2", "0.41", "0.01"],
            ["1", "cutlass_gemm", "1,402.0", "93.5", "0.02", "0.02"]]
    (tmp_path / "ncu.csv").write_text("\n".join(",".join(f'"{c}"' for c in r) for r in rows))
    (tmp_path / "cases.txt").write_text("case 0: gate_up_proj M=8192 wave_256x128x128\n"
                                        "case 1: gate_up_proj M=8192 upstream\n")
    tool = [sys.executable, str(REPO / "tools/gpu/ncu_table.py"), str(tmp_path / "ncu.csv")]
    out = subprocess.run(tool + [str(tmp_path / "cases.txt")], check=True, capture_output=True,
                         text=True).stdout
    assert out.index("wave_256x128x128") < out.index("1,520.3") < out.index("upstream") \
        < out.index("1,402.0")
    assert "gmma_cycles_active" in out and "stalled_barrier" in out
    assert "long_scoreboard" not in out
    (tmp_path / "one.txt").write_text("case 0: only one\n")
    assert subprocess.run(tool + [str(tmp_path / "one.txt")], capture_output=True).returncode == 1
