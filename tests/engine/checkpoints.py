# SPDX-License-Identifier: Apache-2.0
"""Tiny random-weight Llama and Qwen2 checkpoints at realistic scale, in bf16
and in the FP8 checkpoint formats vLLM loads (no tokenizer, no hub).

Sizes every kernel accepts (every projection's N and K is a multiple of 128):
hidden 256, intermediate 512, 4 heads / 2 KV heads of 64, 2 layers, vocab 2048.

Realistic scale (shared/STANDARDS.md §6), not vLLM's `dummy` noise:
- projection weights ~ N(0, 0.02^2) (the usual initializer_range) with a few
  heavier input channels (x3), as trained weights have, so per-channel and
  per-block scales really differ from the per-tensor one;
- RMSNorm weights 1 + N(0, 0.05^2) (except Qwen2's final norm, below);
- embeddings ~ N(0, 0.02^2) with per-token norms spread log-normally (frequent
  and rare tokens), so the layers' outputs, not the input embedding, dominate
  the residual stream (the model does not just copy its input token);
- logits spread over a few units, so logprobs are far from flat: Llama's
  untied lm_head has std 0.2; Qwen2's lm_head is tied to the embeddings and
  its final RMSNorm weights are ~6 (trained tied models grow large final norm
  weights), the other RMSNorm weights ~1;
- Qwen2 has q/k/v biases ~ N(0, 0.02^2).

FP8 kinds (KINDS), all made from the same bf16 weights:
- "online":   the bf16 checkpoint, served with quantization="fp8";
- "fp8":      quant_method fp8, activation_scheme dynamic, a scalar float32
              weight_scale per q/k/v/o/gate/up/down weight (float8_e4m3fn codes);
- "ct":       compressed-tensors float-quantized, per-channel weight_scale
              [N, 1], dynamic per-token activations;
- "block":    quant_method fp8, weight_block_size [128, 128], weight_scale_inv
              [N/128, K/128];
- "static":   as "fp8" with activation_scheme static: a scalar float32
              input_scale per projection, calibrated (calibrated_input_scales)
              on the float64 forward of the bf16 checkpoint.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch

FP8 = torch.float8_e4m3fn
FP8_MAX = 448.0
BLOCK = 128

# The tied lm_head is the (std 0.02) embedding: a final norm of ~6, as trained
# tied models grow, spreads the logits over a few units as the untied one does.
FINAL_NORM_TIED = 6.0

KINDS = ("online", "fp8", "ct", "block", "static")
# Calibration of the static kind's input scales: random prompts (not the
# tests' own) and a margin over their activations' amax, as calibration
# tools leave room for unseen inputs.
CALIBRATION_PROMPTS = (64, 64, 64, 64)
CALIBRATION_MARGIN = 2.0
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    architecture: str
    model_type: str
    rope_theta: float
    rms_norm_eps: float
    tie_word_embeddings: bool
    qkv_bias: bool
    seed: int
    hidden: int = 256
    intermediate: int = 512
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    layers: int = 2
    vocab: int = 2048
    # The logits' spread grows as sqrt(hidden): wider models scale the lm_head
    # (or the tied model's final norm) by sqrt(256 / hidden) to keep it at a
    # few units (tools/gpu/e2e.py's real-size models).
    logit_scale: float = 1.0


MODELS = {
    "llama": ModelSpec("llama", "LlamaForCausalLM", "llama", rope_theta=10000.0,
                       rms_norm_eps=1e-5, tie_word_embeddings=False, qkv_bias=False, seed=1),
    "qwen2": ModelSpec("qwen2", "Qwen2ForCausalLM", "qwen2", rope_theta=1000000.0,
                       rms_norm_eps=1e-6, tie_word_embeddings=True, qkv_bias=True, seed=2),
}


def config_dict(spec: ModelSpec) -> dict:
    cfg = {
        "architectures": [spec.architecture],
        "model_type": spec.model_type,
        "vocab_size": spec.vocab,
        "hidden_size": spec.hidden,
        "intermediate_size": spec.intermediate,
        "num_hidden_layers": spec.layers,
        "num_attention_heads": spec.heads,
        "num_key_value_heads": spec.kv_heads,
        "head_dim": spec.head_dim,
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "rms_norm_eps": spec.rms_norm_eps,
        # Both spellings: transformers 5 reads rope_parameters, older ones rope_theta.
        "rope_theta": spec.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": spec.rope_theta},
        "tie_word_embeddings": spec.tie_word_embeddings,
        "initializer_range": 0.02,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "dtype": "bfloat16",
        "torch_dtype": "bfloat16",
        "use_cache": True,
    }
    if spec.model_type == "llama":
        cfg.update(attention_bias=False, mlp_bias=False)
    else:
        cfg.update(use_sliding_window=False, sliding_window=None,
                   max_window_layers=spec.layers, attention_dropout=0.0)
    return cfg


def _projection(g: torch.Generator, n: int, k: int) -> torch.Tensor:
    w = torch.randn(n, k, generator=g, device=g.device) * 0.02
    heavy = torch.randperm(k, generator=g, device=g.device)[: max(1, k // 64)]
    w[:, heavy] *= 3.0  # a few outlier input channels
    return w


def bf16_weights(spec: ModelSpec, device: str = "cpu") -> dict[str, torch.Tensor]:
    """The model's weights (bf16, on the CPU), HF names, drawn on DEVICE (the
    GPU draws the real-size models of tools/gpu/e2e.py in a blink; other
    numbers than the CPU's for the same seed)."""
    g = torch.Generator(device).manual_seed(spec.seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, device=device)

    h, i, d = spec.hidden, spec.intermediate, spec.head_dim
    q_out, kv_out = spec.heads * d, spec.kv_heads * d
    row_norms = torch.exp(0.3 * randn(spec.vocab, 1))
    w = {"model.embed_tokens.weight": 0.02 * randn(spec.vocab, h) * row_norms}
    for layer in range(spec.layers):
        p = f"model.layers.{layer}."
        w[p + "input_layernorm.weight"] = 1 + 0.05 * randn(h)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.05 * randn(h)
        for name, n, k in (("q_proj", q_out, h), ("k_proj", kv_out, h), ("v_proj", kv_out, h),
                           ("o_proj", h, q_out)):
            w[p + f"self_attn.{name}.weight"] = _projection(g, n, k)
            if spec.qkv_bias and name != "o_proj":
                w[p + f"self_attn.{name}.bias"] = 0.02 * randn(n)
        for name, n, k in (("gate_proj", i, h), ("up_proj", i, h), ("down_proj", h, i)):
            w[p + f"mlp.{name}.weight"] = _projection(g, n, k)
    final_norm = 1.0 if not spec.tie_word_embeddings else FINAL_NORM_TIED * spec.logit_scale
    w["model.norm.weight"] = final_norm * (1 + 0.05 * randn(h))
    if not spec.tie_word_embeddings:
        w["lm_head.weight"] = 0.2 * spec.logit_scale * randn(spec.vocab, h)
    return {k: v.to(torch.bfloat16).cpu().contiguous() for k, v in w.items()}


def is_projection(name: str) -> bool:
    return name.endswith(".weight") and name.split(".")[-2] in PROJECTIONS


def _to_fp8(w: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (w / scale).clamp(-FP8_MAX, FP8_MAX).to(FP8)


def quantize_per_tensor(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = (w.float().abs().amax() / FP8_MAX).reshape(())
    return _to_fp8(w.float(), scale), scale.float()


def quantize_per_channel(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scale = w.float().abs().amax(dim=1, keepdim=True) / FP8_MAX
    return _to_fp8(w.float(), scale), scale.float()


def quantize_block(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n, k = w.shape
    blocks = w.float().view(n // BLOCK, BLOCK, k // BLOCK, BLOCK)
    scale = blocks.abs().amax(dim=(1, 3)) / FP8_MAX  # [N/128, K/128]
    codes = _to_fp8(blocks, scale[:, None, :, None]).view(n, k)
    return codes, scale.float()


QUANT_CONFIGS = {
    "fp8": {"quant_method": "fp8", "activation_scheme": "dynamic"},
    "static": {"quant_method": "fp8", "activation_scheme": "static"},
    "block": {"quant_method": "fp8", "activation_scheme": "dynamic",
              "weight_block_size": [BLOCK, BLOCK]},
    "ct": {
        "quant_method": "compressed-tensors", "format": "float-quantized",
        "quantization_status": "compressed", "ignore": ["lm_head"],
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "channel",
                        "symmetric": True, "dynamic": False},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "token",
                                  "symmetric": True, "dynamic": True}}},
    },
}


def calibrated_input_scales(bf16_path: Path) -> dict[str, torch.Tensor]:
    """{projection name: input_scale}: CALIBRATION_MARGIN x the amax of the
    projection's input over CALIBRATION_PROMPTS random prompts, / 448, from the
    float64 forward (reference.py) of the bf16 checkpoint at BF16_PATH."""
    from .reference import ReferenceModel

    class InputAmax(ReferenceModel):
        def __init__(self, path: Path):
            super().__init__(path)
            self.amax: dict[str, float] = {}

        def _linear(self, x, name):
            self.amax[name] = max(self.amax.get(name, 0.0), float(x.abs().max()))
            return super()._linear(x, name)

    model = InputAmax(bf16_path)
    g = torch.Generator().manual_seed(99)
    for n in CALIBRATION_PROMPTS:
        model.hidden_states(torch.randint(3, model.cfg["vocab_size"], (n,), generator=g).tolist())
    return {name: torch.tensor(CALIBRATION_MARGIN * amax / FP8_MAX, dtype=torch.float32)
            for name, amax in model.amax.items()}


def quantized_weights(weights: dict[str, torch.Tensor], kind: str,
                      input_scales: dict[str, torch.Tensor] | None = None
                      ) -> dict[str, torch.Tensor]:
    """The checkpoint tensors of an FP8 kind: projection weights as e4m3 codes
    plus their scales (and, static kind, INPUT_SCALES' input_scale);
    everything else (embeddings, norms, biases) stays bf16."""
    quantize, scale_name = {
        "fp8": (quantize_per_tensor, "weight_scale"),
        "static": (quantize_per_tensor, "weight_scale"),
        "ct": (quantize_per_channel, "weight_scale"),
        "block": (quantize_block, "weight_scale_inv"),
    }[kind]
    if (kind == "static") != (input_scales is not None):
        raise ValueError(f"input_scales: needed by the static kind only, kind is {kind!r}")
    out = {}
    for name, w in weights.items():
        if is_projection(name):
            codes, scale = quantize(w)
            stem = name[: -len("weight")]
            out[name] = codes.contiguous()
            out[stem + scale_name] = scale.contiguous()
            if input_scales is not None:
                out[stem + "input_scale"] = input_scales[stem[:-1]].contiguous()
        else:
            out[name] = w
    return out


def write_checkpoint(path: Path, spec: ModelSpec, tensors: dict[str, torch.Tensor],
                     quantization_config: dict | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    cfg = config_dict(spec)
    if quantization_config is not None:
        cfg["quantization_config"] = quantization_config
    (path / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    from safetensors.torch import save_file
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    return path


def write_fp8_checkpoint(path: Path, spec: ModelSpec, weights: dict[str, torch.Tensor],
                         kind: str, bf16_path: Path) -> Path:
    """KIND's checkpoint at PATH from the bf16 WEIGHTS (on any device), whose
    checkpoint is at BF16_PATH (the static kind calibrates its input scales
    on it)."""
    scales = calibrated_input_scales(bf16_path) if kind == "static" else None
    tensors = {k: v.cpu() for k, v in quantized_weights(weights, kind, scales).items()}
    return write_checkpoint(path, spec, tensors, QUANT_CONFIGS[kind])


def write_model(root: Path, model: str, kind: str) -> Path:
    """Write MODEL's checkpoint for KIND ("bf16" or an FP8 kind) under ROOT;
    "online" is the bf16 checkpoint (quantized by the engine), written once
    for the FP8 kinds that need it."""
    spec = MODELS[model]
    weights = bf16_weights(spec)
    bf16_path = root / f"{model}-bf16"
    if kind in ("bf16", "online") or not (bf16_path / "model.safetensors").exists():
        write_checkpoint(bf16_path, spec, weights)
    if kind in ("bf16", "online"):
        return bf16_path
    return write_fp8_checkpoint(root / f"{model}-{kind}", spec, weights, kind, bf16_path)


def engine_kwargs(kind: str) -> dict:
    """The LLM() arguments that make the engine serve KIND's checkpoint."""
    return {"quantization": "fp8"} if kind == "online" else {}
