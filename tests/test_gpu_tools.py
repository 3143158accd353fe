# SPDX-License-Identifier: Apache-2.0
"""The GPU-machine tooling, checked where there is no GPU: the device-side
scripts parse, and the report over the committed H100 results gives the
tables docs/e2e-h100.md quotes (so a runner or report change cannot silently
break the next device session)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "e2e"
SCRIPTS = ["tools/gpu/e2e.sh", "tools/gpu/run.sh", "tools/gpu/bundle.sh", "tools/run.sh",
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


@pytest.mark.parametrize("results,doc", [("h100.json", "benchmarks.md"),
                                         ("h100_fused.json", "benchmarks-fused.md")])
def test_benchmark_docs_are_the_report_of_the_results(tmp_path, results, doc):
    """docs/benchmarks*.md are benchmarks/report.py over the committed JSON
    (the plots aside, which need matplotlib)."""
    out = tmp_path / "report.md"
    subprocess.run([sys.executable, str(REPO / "benchmarks/report.py"),
                    str(REPO / "benchmarks/results" / results), "--md", str(out)], check=True)
    strip = lambda text: [line for line in text.splitlines()  # noqa: E731
                          if line and not line.startswith("![")]
    assert strip(out.read_text()) == strip((REPO / "docs" / doc).read_text())
