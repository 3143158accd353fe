# SPDX-License-Identifier: Apache-2.0
"""Fallback: a layer the fork's kernels cannot serve goes to upstream's kernel
choice with one log line saying why; VLLM_CUSTOM_FP8_DISABLE=1 switches the
fork's kernels off; a block layer that upstream would serve with a faster
kernel (DeepGEMM, FlashInfer) is handed back to it. Through vLLM's own
init_fp8_linear_kernel (the patched selection), on its CPU platform."""

import pytest
import torch

from tests.engine.harness import fork_missing_reason, plugin_mode, vllm_log_records

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(fork_missing_reason() is not None,
                                 reason=fork_missing_reason() or "")]


def select(weight_shape, input_dtype=torch.bfloat16, block=False, vllm_config=None):
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.kernels.linear import init_fp8_linear_kernel
    from vllm.model_executor.layers.quantization.utils.quant_utils import (
        kFp8Dynamic128Sym, kFp8DynamicTokenSym, kFp8Static128BlockSym, kFp8StaticTensorSym)

    keys = (kFp8Dynamic128Sym, kFp8Static128BlockSym) if block else \
        (kFp8DynamicTokenSym, kFp8StaticTensorSym)
    with set_current_vllm_config(vllm_config or VllmConfig()), vllm_log_records() as records:
        kernel = init_fp8_linear_kernel(*keys, input_dtype, input_dtype, weight_shape,
                                        module_name="layer")
    return type(kernel).__name__, [r.message for r in records]


def test_supported_layer_takes_the_fork_kernel():
    name, _ = select((512, 256))
    assert name == "CustomFp8ScaledMMLinearKernel"


@pytest.mark.parametrize("weight_shape,input_dtype,reason", [
    ((40, 256), torch.bfloat16, "needs K and N divisible by 16"),
    ((512, 100), torch.bfloat16, "needs K and N divisible by 16"),
    ((512, 256), torch.float32, "needs bf16/fp16 activations"),
])
def test_unsupported_layer_falls_back_with_one_log_line(weight_shape, input_dtype, reason):
    name, messages = select(weight_shape, input_dtype)
    assert name != "CustomFp8ScaledMMLinearKernel"
    ours = [m for m in messages if m.startswith("custom_fp8:")]
    assert len(ours) == 1 and reason in ours[0] and "upstream's kernel serves it" in ours[0], ours


def test_switched_off_by_env(monkeypatch):
    monkeypatch.setenv("VLLM_CUSTOM_FP8_DISABLE", "1")
    name, _ = select((512, 256))
    assert name != "CustomFp8ScaledMMLinearKernel"


# ------------------------------------------- block FP8: hand-back to upstream

def _upstream_block_kernel(name: str, supported: bool = True):
    """A stand-in for one of upstream's block kernels, by class name (what
    the hand-back goes by): the CPU platform has no DeepGEMM or FlashInfer."""
    from vllm.model_executor.kernels.linear.scaled_mm.cpu import CPUFp8BlockScaledMMKernel

    return type(name, (CPUFp8BlockScaledMMKernel,), {
        "is_supported": classmethod(lambda cls, cc=None: (supported, "stand-in")),
        "can_implement": classmethod(lambda cls, c: (True, None)),
    })


@pytest.fixture
def upstream_block_first(monkeypatch):
    """Puts a stand-in upstream kernel right after ours in the CPU block list."""
    from vllm.model_executor.kernels import linear
    from vllm.platforms import PlatformEnum

    def put(kernel):
        ours, *upstream = linear._POSSIBLE_FP8_BLOCK_KERNELS[PlatformEnum.CPU]
        assert ours.__name__ == "CustomFp8BlockScaledMMKernel", ours
        monkeypatch.setitem(linear._POSSIBLE_FP8_BLOCK_KERNELS, PlatformEnum.CPU,
                            [ours, kernel, *upstream])
        return kernel
    return put


def test_block_layer_takes_the_fork_kernel_where_upstream_has_no_faster_one():
    name, messages = select((512, 256), block=True)
    assert name == "CustomFp8BlockScaledMMKernel"
    assert not [m for m in messages if m.startswith("custom_fp8:")]


@pytest.mark.parametrize("faster", ["FlashInferFp8DeepGEMMDynamicBlockScaledKernel",
                                    "DeepGemmFp8BlockScaledMMKernel"])
def test_block_layer_handed_back_to_a_faster_upstream_kernel(upstream_block_first, faster):
    upstream_block_first(_upstream_block_kernel(faster))
    name, messages = select((512, 256), block=True)
    assert name == faster
    ours = [m for m in messages if m.startswith("custom_fp8:")]
    assert len(ours) == 1 and f"faster on upstream's {faster}" in ours[0] \
        and "upstream's kernel serves it" in ours[0], ours


def test_block_layer_kept_where_upstream_would_take_a_slower_kernel(upstream_block_first):
    upstream_block_first(_upstream_block_kernel("CutlassFp8BlockScaledMMKernel"))
    name, _ = select((512, 256), block=True)
    assert name == "CustomFp8BlockScaledMMKernel"


@pytest.mark.parametrize("why", ["unsupported", "disabled", "env", pytest.param(
    "linear_backend", marks=pytest.mark.skipif(
        fork_missing_reason() is None and plugin_mode(),
        reason="plugin mode: --linear-backend is a Literal upstream (patch 0006 adds ours)"))])
def test_block_layer_kept_where_the_faster_kernel_does_not_run_or_ours_is_asked_for(
        upstream_block_first, monkeypatch, why):
    from vllm.config import KernelConfig, VllmConfig

    faster = "DeepGemmFp8BlockScaledMMKernel"
    upstream_block_first(_upstream_block_kernel(faster, supported=why != "unsupported"))
    config = None
    if why == "disabled":  # upstream's own switch, read by its selection
        import vllm.envs as envs
        monkeypatch.setattr(envs, "VLLM_DISABLED_KERNELS", [faster], raising=False)
        monkeypatch.setenv("VLLM_DISABLED_KERNELS", faster)
    elif why == "env":
        monkeypatch.setenv("VLLM_CUSTOM_FP8_BLOCK_HANDBACK", "0")
    elif why == "linear_backend":
        config = VllmConfig(kernel_config=KernelConfig(linear_backend="custom_fp8"))
    name, _ = select((512, 256), block=True, vllm_config=config)
    assert name == "CustomFp8BlockScaledMMKernel"
