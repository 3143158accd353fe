# SPDX-License-Identifier: Apache-2.0
"""A kernel-independent float64 forward of the tiny Llama / Qwen2 checkpoints,
straight from config.json + model.safetensors.

No vLLM and no custom_fp8 code: FP8 projection weights are dequantized here
(codes * scale, with a scalar, per-channel [N, 1] or 128x128-block
weight_scale_inv), then everything is float64 math: RMSNorm, neox-style RoPE
(rope_theta from the config), causal GQA attention, SiLU-and-mul MLP, final
norm and the tied or untied lm_head. test_reference.py checks it against HF
transformers' own model in float64.
"""

import json
from pathlib import Path

import torch

F64 = torch.float64


def _rope_theta(cfg: dict) -> float:
    params = cfg.get("rope_parameters") or {}
    theta = params.get("rope_theta", cfg.get("rope_theta"))
    if theta is None:
        raise ValueError("config.json has no rope_theta")
    if params.get("rope_type", "default") != "default" or cfg.get("rope_scaling"):
        raise ValueError("the reference implements the default RoPE only")
    return float(theta)


def dequantize(tensors: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    """Weight NAME in float64, dequantized if stored as FP8 codes."""
    w = tensors[name]
    if w.dtype not in (torch.float8_e4m3fn, torch.float8_e5m2):
        return w.to(F64)
    stem = name[: -len("weight")]
    codes = w.to(F64)
    if stem + "weight_scale_inv" in tensors:  # [N/bn, K/bk] block scales
        s = tensors[stem + "weight_scale_inv"].to(F64)
        bn, bk = -(-codes.shape[0] // s.shape[0]), -(-codes.shape[1] // s.shape[1])
        s = s.repeat_interleave(bn, 0)[: codes.shape[0]].repeat_interleave(bk, 1)[:, : codes.shape[1]]
        return codes * s
    s = tensors[stem + "weight_scale"].to(F64)
    if s.numel() == 1:
        return codes * s.reshape(())
    return codes * s.reshape(-1, 1)  # per output channel


class ReferenceModel:
    """Float64 Llama/Qwen2 forward from a checkpoint directory."""

    def __init__(self, path: Path, act_noise: float = 0.0,
                 weight_noise: dict[str, float] | None = None, seed: int = 0):
        """The error model the FP8 tolerances are derived with (fidelity.py),
        off by default:
        act_noise = eps multiplies every projection's input by
          (1 + eps * N(0, 1)), elementwise, independently per token (like a
          rounding of the activations); q/k/v share one perturbed input, and
          so do gate/up, as they share one quantized input in vLLM's fused
          qkv_proj and gate_up_proj;
        weight_noise = {projection name: eps} multiplies that weight by
          (1 + eps * N(0, 1)) once (like a rounding of the weights)."""
        from safetensors.torch import load_file

        path = Path(path)
        self.act_noise = act_noise
        self.noise = torch.Generator().manual_seed(seed)
        self.cfg = json.loads((path / "config.json").read_text())
        tensors = load_file(str(path / "model.safetensors"))
        self.w = {name: dequantize(tensors, name) for name in tensors
                  if not name.endswith(("weight_scale", "weight_scale_inv", "input_scale"))}
        c = self.cfg
        self.hidden = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads", self.heads)
        self.head_dim = c.get("head_dim") or self.hidden // self.heads
        self.eps = c["rms_norm_eps"]
        self.theta = _rope_theta(c)
        self.layers = c["num_hidden_layers"]
        if c.get("hidden_act", "silu") != "silu":
            raise ValueError("the reference implements SiLU only")
        tied = c.get("tie_word_embeddings", False)
        self.lm_head = self.w["model.embed_tokens.weight"] if tied else self.w["lm_head.weight"]
        for name, eps in sorted((weight_noise or {}).items()):
            w = self.w[name + ".weight"]
            self.w[name + ".weight"] = w * (1 + eps * self._randn(w.shape))

    def _randn(self, shape) -> torch.Tensor:
        return torch.randn(shape, generator=self.noise, dtype=F64)

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        """A projection's input, perturbed when act_noise is set."""
        return x * (1 + self.act_noise * self._randn(x.shape)) if self.act_noise else x

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        y = x @ self.w[name + ".weight"].T
        bias = self.w.get(name + ".bias")
        return y if bias is None else y + bias

    def _rope(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Neox style (HF Llama's rotate_half): rotate the two halves of each head."""
        d = self.head_dim
        inv_freq = 1.0 / self.theta ** (torch.arange(0, d, 2, dtype=F64) / d)
        angles = positions.to(F64)[:, None] * inv_freq[None, :]  # [T, d/2]
        cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None, :]
        sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None, :]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def _attention(self, x: torch.Tensor, p: str) -> torch.Tensor:
        t, d = x.shape[0], self.head_dim
        x = self._act(x)
        q = self._linear(x, p + "q_proj").view(t, self.heads, d)
        k = self._linear(x, p + "k_proj").view(t, self.kv_heads, d)
        v = self._linear(x, p + "v_proj").view(t, self.kv_heads, d)
        positions = torch.arange(t)
        q, k = self._rope(q, positions), self._rope(k, positions)
        group = self.heads // self.kv_heads  # query head h reads KV head h // group
        k = k.repeat_interleave(group, dim=1)
        v = v.repeat_interleave(group, dim=1)
        scores = torch.einsum("qhd,khd->hqk", q, k) / d ** 0.5
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        scores = scores.masked_fill(~causal, float("-inf"))
        out = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v).reshape(t, self.heads * d)
        return self._linear(self._act(out), p + "o_proj")

    def _mlp(self, x: torch.Tensor, p: str) -> torch.Tensor:
        x = self._act(x)
        gate = self._linear(x, p + "gate_proj")
        up = self._linear(x, p + "up_proj")
        return self._linear(self._act(torch.nn.functional.silu(gate) * up), p + "down_proj")

    def hidden_states(self, token_ids: list[int]) -> torch.Tensor:
        x = self.w["model.embed_tokens.weight"][torch.tensor(token_ids)]
        for layer in range(self.layers):
            p = f"model.layers.{layer}."
            x = x + self._attention(self._rms_norm(x, self.w[p + "input_layernorm.weight"]),
                                    p + "self_attn.")
            x = x + self._mlp(self._rms_norm(x, self.w[p + "post_attention_layernorm.weight"]),
                              p + "mlp.")
        return self._rms_norm(x, self.w["model.norm.weight"])

    def logits(self, token_ids: list[int]) -> torch.Tensor:
        """Float64 logits [T, vocab] of a causal forward over TOKEN_IDS."""
        return self.hidden_states(token_ids) @ self.lm_head.T


def reference_logits(path: Path, token_ids: list[int]) -> torch.Tensor:
    return ReferenceModel(path).logits(token_ids)
