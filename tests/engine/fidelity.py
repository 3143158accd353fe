# SPDX-License-Identifier: Apache-2.0
"""Engine logprobs vs the float64 reference: the metric, and tolerances
derived from the rounding the engine adds.

Metric (per model and checkpoint kind, over every teacher-forced position):
- mean |logprob_engine - logprob_ref| over the reference's top-K tokens;
- top-1 agreement: the fraction of positions where the engine's argmax is
  the reference's, or ties with it to within one bf16 ulp of the top logit
  (Reference.tie: the engine's logits are bf16, so closer tokens cannot be
  ordered by any bf16 engine).

Where the engine's error comes from. The reference sees the checkpoint's
dequantized weights (codes * scales) and computes in float64; the engine adds
(1) FP8 (e4m3) rounding of every projection's input activations, in the
    scheme vLLM selected (per-tensor, per-token or 1x128 groups; e4m3 is a
    float format, so the relative error does not depend on the scale as long
    as values stay above the subnormal range, 2^-6 * scale, i.e. 4.5 decades
    below the group's amax);
(2) for some kinds a second FP8 rounding of the weights: online
    quantization="fp8" quantizes the bf16 weights (the reference keeps them
    exact), and serialized per-tensor "fp8" checkpoints have their fused
    q/k/v and gate/up shards requantized to one shared scale (upstream's
    requantize_with_max_scale), re-rounding every shard whose scale is not
    the maximum;
(3) bf16 storage and arithmetic everywhere else (the "floor").

Error model. Round-to-nearest-even into a float with 3 mantissa bits leaves a
relative error uniform in +-1/2 ulp, ulp = 2^-3 * 2^e, on a value >= 2^e: its
rms is at most EPS_E4M3 = 2^-3 / sqrt(12) = 2^-4 / sqrt(3) = 0.036 (0.026 is
what random activations and weights actually get). So the engine is, to
first order, the reference with
- every projection's input multiplied by (1 + d), d of rms <= EPS_E4M3,
  independent per token and element, one draw shared by q/k/v and one by
  gate/up (they are quantized once, as the input of the fused layer);
- each weight that is rounded again multiplied by (1 + d'), d' of rms
  <= EPS_E4M3, fixed across tokens (weights_rounded_again()).
How such perturbations turn into logprob errors depends on the model
(attention, SiLU, RMSNorm, the logit spread; a weight error, the same for
every token, does not average out over the tokens attention mixes the way a
per-token activation error does), so it is measured, in float64: the reference with exactly
these perturbations at their bound, Gaussian (ReferenceModel(act_noise=...,
weight_noise=...)), against the clean reference gives S (mean |dlogprob|)
and A (top-1 agreement), averaged over NOISE_SEEDS. (Checked while writing
this, on both models: real e4m3 rounding inside the float64 reference -- of
the activations per token, of the weights per tensor, of both -- gives S
within -5..-3%, +8..+13% and +3..+4% of this Gaussian model at the measured
rms 0.0265; the bound 0.036 is 1.36x that rms.)

Tolerances:
- FP8 kinds: mean |dlogprob| <= S + floor, with floor the bf16 control's
  measured mean |dlogprob| (independent errors add at most linearly);
  top-1 disagreements <= the 99.9% quantile of a Poisson count at the rate
  the simulation saw (flips are rare events at near-tied positions; rate
  taken at its 95% upper bound) + the floor's disagreements.
- bf16 control (no FP8; the reference has the same bf16 weights): the same
  with activation noise EPS_BF16 * 4, EPS_BF16 = 2^-8 / sqrt(3) (8
  significant bits), 4 = sqrt(16): up to 16 independent bf16 roundings per
  projection input's worth of error (inputs, outputs, residual adds, norms,
  RoPE, attention), and the logits rounded to bf16 as vLLM's bf16 lm_head
  returns them (an absolute error of up to 2^-5 on logits of 4..8).
"""

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from . import checkpoints
from .reference import ReferenceModel

TOP_K = 5
EPS_E4M3 = 2.0**-4 / math.sqrt(3)   # rms relative rounding error bound, 3 mantissa bits
EPS_BF16 = 2.0**-8 / math.sqrt(3)   # the same for bf16 (7 stored mantissa bits)
BF16_ROUNDINGS = 16
NOISE_SEEDS = (0, 1)

# Projections fused into one vLLM layer; per-tensor "fp8" checkpoints have
# them requantized to the largest shard scale.
FUSED = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def weights_rounded_again(kind: str, path) -> list[str]:
    """The projections (by name) whose weights the engine rounds to FP8 once
    more than the reference (which uses the checkpoint's codes exactly):
    online: every one (the engine quantizes the bf16 weights);
    fp8, static: each fused q/k/v or gate/up shard whose scale is not its
         group's largest (requantize_with_max_scale; the largest keeps its codes);
    ct, block: none."""
    from safetensors.torch import load_file

    tensors = load_file(str(Path(path) / "model.safetensors"))
    stems = [n[: -len(".weight")] for n in tensors if checkpoints.is_projection(n)]
    if kind == "online":
        return stems
    if kind in ("ct", "block"):
        return []
    assert kind in ("fp8", "static"), kind
    out = []
    for stem in stems:
        parent, proj = stem.rsplit(".", 1)
        for group in FUSED:
            if proj in group:
                scales = [float(tensors[f"{parent}.{p}.weight_scale"]) for p in group]
                if float(tensors[stem + ".weight_scale"]) < max(scales):
                    out.append(stem)
    return out


@dataclass
class Fidelity:
    mean_abs_dlogp: float   # over the reference's top-K tokens, all positions
    top1_agreement: float
    positions: int

    def __str__(self):
        return (f"mean |dlogprob| (ref top-{TOP_K}) {self.mean_abs_dlogp:.4f}, "
                f"top-1 agreement {self.top1_agreement:.3f} over {self.positions} positions")


@dataclass
class Tolerance:
    max_mean_abs_dlogp: float
    min_top1_agreement: float
    how: str

    def check(self, f: Fidelity) -> list[str]:
        """The violated conditions (empty when F is within the tolerance)."""
        bad = []
        if not f.mean_abs_dlogp <= self.max_mean_abs_dlogp:
            bad.append(f"mean |dlogprob| {f.mean_abs_dlogp:.4f} > {self.max_mean_abs_dlogp:.4f}")
        if not f.top1_agreement >= self.min_top1_agreement:
            bad.append(f"top-1 agreement {f.top1_agreement:.3f} < {self.min_top1_agreement:.3f}")
        return bad


@dataclass
class Reference:
    logprobs: list[torch.Tensor]  # per prompt, [T - 1, vocab] float64
    tie: float                    # top-1 choices closer than this are ties


def make_reference(path, prompts) -> Reference:
    """The clean float64 reference. Its tie: one bf16 ulp at the largest
    top-1 logit. The engine's logits are bf16 (vLLM's lm_head output), so no
    bf16 engine can order two tokens closer than that: an engine top-1 within
    TIE of the reference's best counts as agreeing."""
    model = ReferenceModel(path)
    logits = [model.logits(p)[:-1] for p in prompts]
    top = max(float(x.max(-1).values.abs().max()) for x in logits)
    return Reference([x.log_softmax(-1) for x in logits], 2.0 ** (math.floor(math.log2(top)) - 7))


def compare(logprobs: list[torch.Tensor], reference: Reference) -> Fidelity:
    """LOGPROBS (per prompt [positions, vocab], log-softmaxed) vs REFERENCE."""
    got, ref = torch.cat(logprobs).double(), torch.cat(reference.logprobs)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    top = ref.topk(TOP_K, dim=-1).indices
    dlogp = (got.gather(1, top) - ref.gather(1, top)).abs().mean().item()
    best = ref.max(-1).values
    chosen = ref.gather(1, got.argmax(-1, keepdim=True)).squeeze(1)
    agree = (chosen >= best - reference.tie).double().mean().item()
    return Fidelity(dlogp, agree, ref.shape[0])


def reference_logprobs(path, prompts, act_noise: float = 0.0,
                       weight_noise: dict[str, float] | None = None, seed: int = 0,
                       logits_dtype: torch.dtype = torch.float64):
    """Teacher-forced float64 logprobs per prompt, [T - 1, vocab] (the rows
    the engine's prompt_logprobs cover: the prediction of tokens 1..T-1),
    from logits rounded to LOGITS_DTYPE first."""
    model = ReferenceModel(path, act_noise, weight_noise, seed)
    return [model.logits(p)[:-1].to(logits_dtype).double().log_softmax(-1) for p in prompts]


def sensitivity(path, prompts, act_noise: float, weight_noise: dict[str, float] | None = None,
                ref: Reference | None = None,
                logits_dtype: torch.dtype = torch.float64) -> Fidelity:
    """S and A: the perturbed float64 model vs the clean one, averaged over NOISE_SEEDS."""
    reference = ref or make_reference(path, prompts)
    runs = [compare(reference_logprobs(path, prompts, act_noise, weight_noise, seed,
                                       logits_dtype), reference)
            for seed in NOISE_SEEDS]
    return Fidelity(sum(r.mean_abs_dlogp for r in runs) / len(runs),
                    sum(r.top1_agreement for r in runs) / len(runs), runs[0].positions)


def poisson_quantile(lam: float, q: float = 0.999) -> int:
    """The smallest d with P(Poisson(lam) <= d) >= q."""
    d, term = 0, math.exp(-lam)
    total = term
    while total < q:
        d += 1
        term *= lam / d
        total += term
    return d


def _min_agreement(model: Fidelity, extra_disagreements: float = 0.0) -> float:
    """Top-1 flips are rare events at near-tied positions: their count under
    the error model is ~Poisson(lam). lam comes from the len(NOISE_SEEDS)
    simulated runs that saw k flips in all: its 95% upper confidence bound,
    about (k + 3) / runs (exactly 3 for k = 0). Allow the 99.9% quantile of
    Poisson(lam), plus EXTRA (the floor's flips), before calling it too low."""
    n, runs = model.positions, len(NOISE_SEEDS)
    k = round(n * runs * (1 - model.top1_agreement))
    allowed = poisson_quantile((k + 3) / runs) + extra_disagreements
    return 1 - allowed / n


def bf16_tolerance(path, prompts, ref: Reference | None = None) -> Tolerance:
    eps = EPS_BF16 * math.sqrt(BF16_ROUNDINGS)
    s = sensitivity(path, prompts, eps, None, ref, logits_dtype=torch.bfloat16)
    return Tolerance(s.mean_abs_dlogp, _min_agreement(s),
                     f"bf16: activation noise 2^-8/sqrt(3) * sqrt({BF16_ROUNDINGS}) = {eps:.4f} "
                     f"and bf16 logits: S = {s.mean_abs_dlogp:.4f}, A = {s.top1_agreement:.3f}")


def fp8_tolerance(kind: str, path, prompts, floor: Fidelity, ref: Reference | None = None
                  ) -> Tolerance:
    rounded = weights_rounded_again(kind, path)
    s = sensitivity(path, prompts, EPS_E4M3, {name: EPS_E4M3 for name in rounded}, ref)
    max_dlogp = s.mean_abs_dlogp + floor.mean_abs_dlogp
    min_agree = _min_agreement(s, floor.positions * (1 - floor.top1_agreement))
    return Tolerance(max_dlogp, min_agree,
                     f"{kind}: noise 2^-4/sqrt(3) = {EPS_E4M3:.4f} on every projection input "
                     f"and on {len(rounded)} weights: S = {s.mean_abs_dlogp:.4f}, "
                     f"A = {s.top1_agreement:.3f}; + bf16 floor {floor.mean_abs_dlogp:.4f} / "
                     f"{floor.top1_agreement:.3f}")
