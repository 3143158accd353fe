# SPDX-License-Identifier: Apache-2.0
"""The compiled library is a real build of these sources: sm_90a SASS with
FP8 tensor-core instructions (QGMMA) in every GEMM, every kernel present, the
ops registered, and the source hash recorded at build time (CMakeLists.txt)
equal to the hash of the tree. Runs wherever the library was built (CI builds
it with nvcc on a CPU machine); skips where it was not."""

import hashlib
import json
import re
import shutil
import subprocess
import sys

import pytest

from vllm.custom_fp8._library import (EXTENSION_PATH, SCHEMAS, block_scaled_mm_configs, build_info,
                                      scaled_mm_configs)

from conftest import REPO

SRC = REPO / "csrc" / "quantization" / "custom_fp8"

pytestmark = [
    pytest.mark.build,
    pytest.mark.skipif(not EXTENSION_PATH.exists(), reason="the CUDA library is not built"),
]


def source_hash() -> str:
    """CMakeLists.txt's hash: sorted "relative path:sha256" of every input."""
    entries = sorted(f"{p.relative_to(SRC)}:{hashlib.sha256(p.read_bytes()).hexdigest()}"
                     for p in SRC.rglob("*")
                     if p.suffix in (".cu", ".cpp", ".h", ".cuh", ".json", ".py"))
    return hashlib.sha256(";".join(entries).encode()).hexdigest()


@pytest.fixture(scope="module")
def sass() -> str:
    if shutil.which("cuobjdump") is None:
        pytest.skip("cuobjdump not on PATH (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm)")
    return subprocess.run(["cuobjdump", "--dump-sass", str(EXTENSION_PATH)], check=True,
                          capture_output=True, text=True).stdout


def kernels(sass: str) -> dict[str, str]:
    """mangled kernel name -> its SASS."""
    parts = re.split(r"\n\s*Function : (\S+)\n", sass)
    return dict(zip(parts[1::2], parts[2::2]))


def test_dispatch_names_compiled_configs():
    """The dispatch fails at run time on a configuration the library lacks:
    every choice of each GPU's tuned table and of the analytic model (the
    names in scaled_mm_dispatch.cu) must be one it compiled."""
    analytic = re.findall(r'"((?:swap|tile|splitk|wave)_\w+)"',
                          (SRC / "scaled_mm_dispatch.cu").read_text())
    assert analytic, "no configuration names found in scaled_mm_dispatch.cu"
    choices = {"analytic model": set(analytic)}
    for table in sorted((SRC / "tuned").glob("scaled_mm_*.json")):
        choices[table.name] = {e["config"] for e in json.loads(table.read_text())["entries"]}
    assert len(choices) > 1, "no tuned table"
    for source, names in choices.items():
        missing = names - set(scaled_mm_configs())
        assert not missing, f"the {source} picks configurations not compiled: {sorted(missing)}"


def test_tuned_tables_are_keyed_by_device(tmp_path):
    """gen_table.py: one entry array per table, sorted by (n, k, m), each
    under the device name it was measured on; no table at all gives the
    end marker alone (the analytic model then decides everywhere)."""
    def table(name, device, entries):
        path = tmp_path / name
        path.write_text(json.dumps({"device": device, "entries": [
            {"n": n, "k": k, "m": m, "config": c} for n, k, m, c in entries]}))
        return str(path)
    gen = [sys.executable, str(SRC / "tuned" / "gen_table.py"), str(tmp_path / "out.inc")]
    subprocess.run(gen + [table("scaled_mm_h200.json", "NVIDIA H200", [(64, 128, 8, "b")]),
                          table("scaled_mm_h100.json", "NVIDIA H100 80GB HBM3",
                                [(64, 128, 16, "c"), (64, 128, 1, "a")])], check=True)
    out = (tmp_path / "out.inc").read_text()
    assert out.index('{64, 128, 1, "a"}') < out.index('{64, 128, 16, "c"}') \
        < out.index('{64, 128, 8, "b"}')
    assert '{"NVIDIA H100 80GB HBM3", kTuned0, std::size(kTuned0)},\n' \
        '    {"NVIDIA H200", kTuned1, std::size(kTuned1)},\n    {nullptr, nullptr, 0},' in out
    subprocess.run(gen, check=True)
    out = (tmp_path / "out.inc").read_text()
    assert "kTuned0" not in out and "{nullptr, nullptr, 0}," in out


def test_source_hash_matches_tree():
    assert build_info()["source_hash"] == source_hash(), \
        "the library was built from other sources: rebuild (python setup.py build_ext --inplace)"


def test_only_sm90a_code(sass):
    archs = set(re.findall(r"arch = (sm_\w+)", sass))
    assert archs == {"sm_90a"}, archs
    assert build_info()["cuda_archs"] == "90a"


def test_every_gemm_uses_fp8_tensor_cores(sass):
    gemms = {name: code for name, code in kernels(sass).items() if "GemmUniversal" in name}
    # per output dtype: every scaled_mm kernel (a *_promoteN configuration
    # runs its base's kernel) + 2 block-scaled ones, each compiled once
    scaled = {re.sub(r"_promote\d+$", "", c) for c in scaled_mm_configs()
              if not c.startswith(("splitk_", "wave_"))}
    assert len(gemms) == 2 * (len(scaled) + 2), sorted(gemms)
    compiled = re.findall(r"Function : (\S*GemmUniversal\S*)", sass)
    assert len(compiled) == len(gemms), "a GEMM kernel is compiled in more than one file"
    for name, code in gemms.items():
        assert re.search(r"QGMMA\.64x\d+x32\.F32\.E4M3\.E4M3", code), f"no QGMMA in {name[:80]}"


def test_splitk_kernels(sass):
    """The split-K decode kernel (splitk_mm_sm90.cuh), per output dtype and
    splitk_* configuration: TMA loads, shared-memory loads of 16 bytes, and
    its FP8 MMAs, which sm_90 runs as FP16 tensor-core MMAs on exactly
    unpacked e4m3 codes (mma.sync has no FP8 path on Hopper; WGMMA has);
    PDL both ways (waits before reading what the previous grid wrote, lets
    the next one launch)."""
    splitk = {name: code for name, code in kernels(sass).items() if "splitk_mm_kernel" in name}
    configs = [c for c in scaled_mm_configs() if c.startswith("splitk_")]
    assert configs and len(splitk) == 2 * len(configs), sorted(splitk)
    for name, code in splitk.items():
        for instruction in ("UTMALDG.2D", "LDS.128", "HMMA.16816.F32", "F2FP.F16.E4M3.UNPACK_B",
                            "ACQBULK", "PREEXIT"):
            assert instruction in code, f"no {instruction} in {name[:80]}"


def test_wave_kernels(sass):
    """The wave GEMM (wave_mm_sm90.cuh), per output dtype and wave_*
    configuration of scaled_mm and block_scaled_mm: FP8 WGMMAs of 64 x the tile's N, TMA loads
    (multicast in the *_cluster2 ones), the register split between producer
    and math warpgroups (setmaxnreg 40 / 232), PDL both ways; the 128 x 128
    tiles keep one batch of WGMMAs in flight while promoting the one before
    (a wait for all but one: ptxas serializes the batches where it cannot
    prove the promotion reads only completed accumulators)."""
    wave = {name: code for name, code in kernels(sass).items() if "wave_mm_kernel" in name}
    configs = [c for c in scaled_mm_configs() + block_scaled_mm_configs() if c.startswith("wave_")]
    assert configs and len(wave) == 2 * len(configs), sorted(wave)
    for name, code in wave.items():
        # <ElementD, kBlockM, kBlockN, kClusterN, kBlockScaled>
        block_m, block_n, cluster_n = re.search(r"ELi(\d+)ELi(\d+)ELi(\d+)ELb", name).groups()
        for instruction in (f"QGMMA.64x{block_n}x32.F32.E4M3.E4M3", "UTMALDG.2D",
                            "USETMAXREG.DEALLOC.CTAPOOL 0x28", "USETMAXREG.TRY_ALLOC.CTAPOOL",
                            "ACQBULK", "PREEXIT"):
            assert instruction in code, f"no {instruction} in {name[:80]}"
        assert ("UTMALDG.2D.MULTICAST" in code) == (cluster_n == "2"), name[:80]
        pipelined = block_m == block_n == "128"
        assert ("WARPGROUP.DEPBAR.LE gsb0, 0x1" in code) == pipelined, name[:80]


def test_no_kernel_spills(sass):
    """No kernel of the library spills registers to local memory (ptxas
    -v's spill stores and loads are its STL / LDL)."""
    spilling = [name[:100] for name, code in kernels(sass).items()
                if re.search(r"\b(STL|LDL)\b", code)]
    assert not spilling, spilling


def test_quant_kernels_present(sass):
    names = " ".join(kernels(sass))
    for kernel in ("per_tensor_quant_kernel", "absmax_kernel", "per_token_quant_kernel",
                   "per_token_group_quant_kernel"):
        assert kernel in names, kernel



def test_pdl_instructions(sass):
    """PDL (gemm_run_sm90.cuh): every kernel a GEMM reads from lets its
    dependent launch early (griddepcontrol.launch_dependents: PREEXIT), and
    every scaled GEMM that launches with PDL waits on that grid before it
    loads (griddepcontrol.wait: ACQBULK). The stream-K ones are built without
    the wait, so they launch without PDL (scaled_mm_sm90_streamk_bf16.cu)."""
    producers = ("per_tensor_quant_kernel", "per_token_quant_kernel",
                 "per_token_group_quant_kernel", "rms_norm_quant_kernel",
                 "silu_and_mul_quant_kernel", "padding_rows_kernel")
    found = 0
    for name, code in kernels(sass).items():
        if any(p in name for p in producers):
            found += 1
            assert "PREEXIT" in code, f"no launch_dependents in {name[:80]}"
        elif "GemmUniversal" in name and "BlockScaled" not in name:
            streamk = "StreamKScheduler" in name
            assert ("ACQBULK" in code) != streamk, f"{name[:120]}: streamk={streamk}"
    assert found >= len(producers)

# The fused kernels' template arguments in their mangled names: <T, ScaleMode,
# (residual,) aligned> (rms_norm_quant.cu, silu_and_mul_quant.cu).
FUSED_KERNEL = re.compile(r"(rms_norm|silu_and_mul)_quant_kernelI(\w+?)LNS_9ScaleModeE(\d)E"
                          r"(?:Lb([01])E)?Lb([01])E")


def test_fused_kernels_present_and_vectorized(sass):
    """Every instantiation of the fused kernels (3 dtypes x 3 scale modes x
    residual or not x vector or element-wise loads) converts to e4m3 in
    hardware; the vector variants load 16 bytes and store 8 codes at once."""
    found = {}
    for name, code in kernels(sass).items():
        m = FUSED_KERNEL.search(name)
        if m is None:
            continue
        family, dtype, mode, residual, aligned = m.groups()
        found[(family, dtype, mode, residual, aligned)] = name
        assert "F2FP.SATFINITE.E4M3" in code, f"no FP8 conversion in {name[:80]}"
        if aligned == "1":
            assert re.search(r"LDG\.E\.128", code) and re.search(r"STG\.E\.64", code), \
                f"no 16-byte loads / 8-byte code stores in {name[:80]}"
    families = {f for f, *_ in found}
    assert families == {"rms_norm", "silu_and_mul"}, families
    assert sum(f == "rms_norm" for f, *_ in found) == 3 * 3 * 2 * 2
    assert sum(f == "silu_and_mul" for f, *_ in found) == 3 * 3 * 2


def test_registers_every_op():
    data = EXTENSION_PATH.read_bytes()
    for op in SCHEMAS:
        assert op.encode() + b"\0" in data, f"{op} is not registered by the library"
