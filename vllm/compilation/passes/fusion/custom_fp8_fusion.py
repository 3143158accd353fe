# SPDX-License-Identifier: Apache-2.0
"""Compiled-mode fusion of the activation quant into its producer, for the
fork's FP8 kernels (custom_fp8).

The fork's kernel classes quantize each projection's input with
torch.ops._custom_fp8 quant ops, which Inductor cannot fuse. This pass
rewrites, in the post-grad graph,
    vllm_ir.rms_norm            -> _custom_fp8 per-token quant
    vllm_ir.fused_add_rms_norm  -> _custom_fp8 per-token quant
    SiLU-and-mul (native or _C) -> _custom_fp8 per-token quant
into one _custom_fp8 fused producer each (rms_norm_dynamic_per_token_fp8_quant,
silu_and_mul_dynamic_per_token_fp8_quant), whose codes and scales feed the
same GEMM. So qkv_proj, gate_up_proj and down_proj get no standalone quant
kernel. Per-token is the activation scheme upstream (and the fork) use for
dynamic FP8 on the H100; static and per-token-group inputs keep their
separate quant for now.

Numerics: the fused producers round where Inductor's code for vLLM's native
RMSNorm and SiLU-and-mul rounds (once; docs/numerics.md, "Fused
producers"), so on the CPU the pass gives the compiled unfused module's bits
(tests/engine/test_fusion_pass.py).

On by default where the fork's kernels serve the platform;
VLLM_CUSTOM_FP8_FUSION=0 turns it off. Registered by the patch series in
vllm/compilation/passes/pass_manager.py.
"""

import os

import torch
import torch._inductor.pattern_matcher as pm
from torch._higher_order_ops.auto_functionalize import auto_functionalized
from torch._inductor.pattern_matcher import PatternMatcherPass

import vllm.custom_fp8  # noqa: F401  (defines the torch.ops._custom_fp8 schemas)
import vllm.ir.ops
from vllm.config import VllmConfig
from vllm.logger import init_logger

from ..inductor_pass import enable_fake_mode
from ..vllm_inductor_pass import VllmInductorPass, VllmPatternMatcherPass
from .matcher_utils import MatcherSiluAndMul

logger = init_logger(__name__)

FP8 = torch.float8_e4m3fn
EPSILONS = (1e-5, 1e-6)  # Llama, Qwen2

_ops = torch.ops._custom_fp8
PER_TOKEN_QUANT = _ops.dynamic_per_token_scaled_fp8_quant.default
RMS_NORM_PER_TOKEN_QUANT = _ops.rms_norm_dynamic_per_token_fp8_quant.default
SILU_MUL_PER_TOKEN_QUANT = _ops.silu_and_mul_dynamic_per_token_fp8_quant.default


def fusion_enabled() -> bool:
    """The fork's kernels serve this platform and VLLM_CUSTOM_FP8_FUSION is not 0."""
    from vllm.model_executor.kernels.linear.scaled_mm.custom_fp8 import platform_supported

    return os.environ.get("VLLM_CUSTOM_FP8_FUSION", "1") != "0" and platform_supported()[0]


def _empty_bf16(*shape: int) -> torch.Tensor:
    return torch.empty(*shape, dtype=torch.bfloat16)


def _outputs(x: torch.Tensor, cols: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The FP8 codes [T, cols] and per-token scales [T, 1] for rows of x."""
    return (torch.empty((x.shape[0], cols), dtype=FP8, device=x.device),
            torch.empty((x.shape[0], 1), dtype=torch.float32, device=x.device))


def _per_token_quant(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The graph the fork's kernel class leaves for a per-token quant of x [T, K]
    (vllm.custom_fp8.scaled_fp8_quant, functionalized)."""
    out, scale = _outputs(x, x.shape[-1])
    at = auto_functionalized(PER_TOKEN_QUANT, out=out, input=x, scale=scale, scale_ub=None)
    return at[1], at[2]


def register_rms_norm(epsilon: float, patterns: PatternMatcherPass) -> None:
    def pattern(x: torch.Tensor, weight: torch.Tensor):
        return _per_token_quant(vllm.ir.ops.rms_norm(x, weight, epsilon))

    def replacement(x: torch.Tensor, weight: torch.Tensor):
        out, scale = _outputs(x, x.shape[-1])
        at = auto_functionalized(RMS_NORM_PER_TOKEN_QUANT, out=out, input=x, weight=weight,
                                 scale=scale, epsilon=epsilon, scale_ub=None, residual=None)
        return at[1], at[2]

    pm.register_replacement(pattern, replacement, [_empty_bf16(5, 16), _empty_bf16(16)],
                            pm.fwd_only, patterns)


def register_fused_add_rms_norm(epsilon: float, patterns: PatternMatcherPass) -> None:
    def pattern(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor):
        normed, residual = vllm.ir.ops.fused_add_rms_norm(x, residual, weight, epsilon)
        return (*_per_token_quant(normed), residual)

    def replacement(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor):
        out, scale = _outputs(x, x.shape[-1])
        at = auto_functionalized(RMS_NORM_PER_TOKEN_QUANT, out=out, input=x, weight=weight,
                                 scale=scale, epsilon=epsilon, scale_ub=None,
                                 residual=residual)
        return at[1], at[2], at[3]

    pm.register_replacement(
        pattern, replacement, [_empty_bf16(5, 16), _empty_bf16(5, 16), _empty_bf16(16)],
        pm.fwd_only, patterns)


def register_silu_and_mul(patterns: PatternMatcherPass) -> None:
    silu_and_mul = MatcherSiluAndMul()

    def pattern(x: torch.Tensor):
        return _per_token_quant(silu_and_mul(x))

    def replacement(x: torch.Tensor):
        out, scale = _outputs(x, x.shape[-1] // 2)
        at = auto_functionalized(SILU_MUL_PER_TOKEN_QUANT, out=out, input=x, scale=scale,
                                 scale_ub=None)
        return at[1], at[2]

    pm.register_replacement(pattern, replacement, [_empty_bf16(5, 32)], pm.fwd_only, patterns)


class CustomFp8FusionPass(VllmPatternMatcherPass):
    """RMSNorm / fused-add RMSNorm / SiLU-and-mul + the fork's per-token quant
    -> the fork's fused producer."""

    @enable_fake_mode
    def __init__(self, config: VllmConfig) -> None:
        super().__init__(config)
        self.patterns = PatternMatcherPass(pass_name="custom_fp8_fusion_pass")
        for epsilon in EPSILONS:
            # fused-add first: the plain RMSNorm pattern is a subset of it
            register_fused_add_rms_norm(epsilon, self.patterns)
            register_rms_norm(epsilon, self.patterns)
        register_silu_and_mul(self.patterns)
        self.dump_patterns(config, self.patterns)

    @VllmInductorPass.time_and_log
    def __call__(self, graph: torch.fx.Graph) -> None:
        self.matched_count = self.patterns.apply(graph)
        logger.debug("custom_fp8 fusion: replaced %s patterns", self.matched_count)

    def uuid(self) -> str:
        return self.hash_source(self, _per_token_quant, _outputs, register_rms_norm,
                                register_fused_add_rms_norm, register_silu_and_mul)
