# SPDX-License-Identifier: Apache-2.0
"""Compiled-mode fusion of the activation quant into its producer, for the
fork's FP8 kernels (custom_fp8).

The fork's kernel classes quantize each projection's input with
torch.ops._custom_fp8 quant ops, which Inductor cannot fuse. This pass
rewrites, in the post-grad graph,
    vllm_ir.rms_norm            -> _custom_fp8 quant (per-token, static or group)
    vllm_ir.fused_add_rms_norm  -> _custom_fp8 quant (per-token, static or group)
    SiLU-and-mul (native or _C) -> _custom_fp8 quant (per-token, static or group)
into one _custom_fp8 fused producer each (rms_norm_dynamic_per_token_fp8_quant,
rms_norm_static_fp8_quant, silu_and_mul_...), whose codes (and scales) feed
the same GEMM. So qkv_proj, gate_up_proj and down_proj get no standalone
quant kernel. Per-token is the scheme upstream (and the fork) use for
dynamic FP8 on the H100, static per-tensor that of checkpoints with input
scales, 1 x 128 groups that of block FP8 checkpoints.

Numerics: the fused producers round where Inductor's code for vLLM's native
RMSNorm and SiLU-and-mul rounds (once; docs/numerics.md, "Fused
producers"), so on the CPU the pass gives the compiled unfused module's bits
(tests/engine/test_fusion_pass.py).

On by default where the fork's kernels serve the platform;
VLLM_CUSTOM_FP8_FUSION=0 turns it off. Registered by the patch series in
vllm/compilation/passes/pass_manager.py.
"""

import dataclasses
import os
from collections.abc import Callable

import torch
import torch._inductor.pattern_matcher as pm
from torch._higher_order_ops.auto_functionalize import auto_functionalized
from torch._inductor.pattern_matcher import PatternMatcherPass

import vllm.custom_fp8  # noqa: F401  (defines the torch.ops._custom_fp8 schemas)
from vllm.custom_fp8.numerics import GROUP_SIZE
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


@dataclasses.dataclass(frozen=True)
class ScaleMode:
    """An activation scale mode: the quant op the fork's kernel class leaves
    in the graph, the fused producers that replace producer + quant, and the
    scale argument. The scale tensor is a pattern input in every mode (the
    static scale, or the buffer a dynamic quant writes, allocated outside
    the pattern), so the fused op reads or writes the very tensor the GEMM
    takes; the group buffer's TMA-aligned stride is symbolic arithmetic that
    the graph shares between layers and a pattern could not own."""
    quant: torch._ops.OpOverload
    rms_norm: torch._ops.OpOverload
    silu_and_mul: torch._ops.OpOverload
    writes_scale: bool  # dynamic: the op writes the scales (an output too)
    example_scale: Callable[[], torch.Tensor]  # for T = 5 tokens, K = 128
    args: tuple[tuple[str, object], ...] = ()  # the mode's other op arguments


PER_TOKEN = ScaleMode(_ops.dynamic_per_token_scaled_fp8_quant.default,
                      _ops.rms_norm_dynamic_per_token_fp8_quant.default,
                      _ops.silu_and_mul_dynamic_per_token_fp8_quant.default, True,
                      lambda: torch.empty(5, 1), (("scale_ub", None),))
STATIC = ScaleMode(_ops.static_scaled_fp8_quant.default, _ops.rms_norm_static_fp8_quant.default,
                   _ops.silu_and_mul_static_fp8_quant.default, False, lambda: torch.empty(1))
# Block FP8: 1 x 128 groups, scales column-major with the rows padded to a
# multiple of 4, as the block-scaled GEMM takes them (linear.fp8_linear).
GROUP = ScaleMode(_ops.per_token_group_fp8_quant.default,
                  _ops.rms_norm_per_token_group_fp8_quant.default,
                  _ops.silu_and_mul_per_token_group_fp8_quant.default, True,
                  lambda: torch.empty_strided((5, 1), (1, 8)), (("group_size", GROUP_SIZE),))
MODES = (PER_TOKEN, STATIC, GROUP)


def fusion_enabled() -> bool:
    """The fork's kernels serve this platform and VLLM_CUSTOM_FP8_FUSION is not 0."""
    from vllm.model_executor.kernels.linear.scaled_mm.custom_fp8 import platform_supported

    return os.environ.get("VLLM_CUSTOM_FP8_FUSION", "1") != "0" and platform_supported()[0]


def _empty_bf16(*shape: int) -> torch.Tensor:
    """A pattern's example input (hidden sizes of whole 128-groups: every mode's
    op checks accept them)."""
    return torch.empty(*shape, dtype=torch.bfloat16)


def _quant_into(mode: ScaleMode, op, x: torch.Tensor, cols: int, scale: torch.Tensor,
                **args) -> tuple:
    """auto_functionalized `op` (a quant or a fused producer) writing the codes
    [T, cols] of x's rows: its mutated outputs (codes, the scales in a dynamic
    mode, the residual where args has one)."""
    out = torch.empty((x.shape[0], cols), dtype=FP8, device=x.device)
    n_out = 1 + mode.writes_scale + (args.get("residual") is not None)
    return auto_functionalized(op, out=out, input=x, scale=scale, **dict(mode.args),
                               **args)[1:1 + n_out]


def _quant(mode: ScaleMode, x: torch.Tensor, scale: torch.Tensor) -> tuple:
    """The graph the fork's kernel class leaves for the quant of x [T, K]
    (vllm.custom_fp8.scaled_fp8_quant / per_token_group_quant_fp8,
    functionalized)."""
    return _quant_into(mode, mode.quant, x, x.shape[-1], scale)


def _register(mode: ScaleMode, pattern, replacement, example_inputs: list,
              patterns: PatternMatcherPass) -> None:
    pm.register_replacement(pattern, replacement, [*example_inputs, mode.example_scale()],
                            pm.fwd_only, patterns)


def register_rms_norm(mode: ScaleMode, epsilon: float, patterns: PatternMatcherPass) -> None:
    def pattern(x, weight, scale):
        return _quant(mode, vllm.ir.ops.rms_norm(x, weight, epsilon), scale)

    def replacement(x, weight, scale):
        return _quant_into(mode, mode.rms_norm, x, x.shape[-1], scale, weight=weight,
                           epsilon=epsilon, residual=None)

    _register(mode, pattern, replacement, [_empty_bf16(5, GROUP_SIZE), _empty_bf16(GROUP_SIZE)],
              patterns)


def register_fused_add_rms_norm(mode: ScaleMode, epsilon: float,
                                patterns: PatternMatcherPass) -> None:
    def pattern(x, residual, weight, scale):
        normed, residual = vllm.ir.ops.fused_add_rms_norm(x, residual, weight, epsilon)
        return (*_quant(mode, normed, scale), residual)

    def replacement(x, residual, weight, scale):
        return _quant_into(mode, mode.rms_norm, x, x.shape[-1], scale, weight=weight,
                           epsilon=epsilon, residual=residual)

    _register(mode, pattern, replacement,
              [_empty_bf16(5, GROUP_SIZE), _empty_bf16(5, GROUP_SIZE), _empty_bf16(GROUP_SIZE)],
              patterns)


def register_silu_and_mul(mode: ScaleMode, patterns: PatternMatcherPass) -> None:
    silu_and_mul = MatcherSiluAndMul()

    def pattern(x, scale):
        return _quant(mode, silu_and_mul(x), scale)

    def replacement(x, scale):
        return _quant_into(mode, mode.silu_and_mul, x, x.shape[-1] // 2, scale)

    _register(mode, pattern, replacement, [_empty_bf16(5, 2 * GROUP_SIZE)], patterns)


class CustomFp8FusionPass(VllmPatternMatcherPass):
    """RMSNorm / fused-add RMSNorm / SiLU-and-mul + the fork's per-token,
    static or group quant -> the fork's fused producer."""

    @enable_fake_mode
    def __init__(self, config: VllmConfig) -> None:
        super().__init__(config)
        self.patterns = PatternMatcherPass(pass_name="custom_fp8_fusion_pass")
        for mode in MODES:
            for epsilon in EPSILONS:
                # fused-add first: the plain RMSNorm pattern is a subset of it
                register_fused_add_rms_norm(mode, epsilon, self.patterns)
                register_rms_norm(mode, epsilon, self.patterns)
            register_silu_and_mul(mode, self.patterns)
        self.dump_patterns(config, self.patterns)

    @VllmInductorPass.time_and_log
    def __call__(self, graph: torch.fx.Graph) -> None:
        self.matched_count = self.patterns.apply(graph)
        logger.debug("custom_fp8 fusion: replaced %s patterns", self.matched_count)

    def uuid(self) -> str:
        return self.hash_source(self, _quant_into, _quant, _register, register_rms_norm,
                                register_fused_add_rms_norm, register_silu_and_mul)
