# SPDX-License-Identifier: Apache-2.0
"""Fallback: a layer the fork's kernels cannot serve goes to upstream's kernel
choice with one log line saying why; VLLM_CUSTOM_FP8_DISABLE=1 switches the
fork's kernels off. Through vLLM's own init_fp8_linear_kernel (the patched
selection), on its CPU platform."""

import logging

import pytest
import torch

from tests.engine.harness import fork_missing_reason, vllm_log_records

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(fork_missing_reason() is not None,
                                 reason=fork_missing_reason() or "")]


def select(weight_shape, input_dtype=torch.bfloat16):
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.model_executor.kernels.linear import init_fp8_linear_kernel
    from vllm.model_executor.layers.quantization.utils.quant_utils import (
        kFp8DynamicTokenSym, kFp8StaticTensorSym)

    vllm_logger = logging.getLogger("vllm")
    level = vllm_logger.level
    vllm_logger.setLevel(logging.INFO)  # no engine ran, so vLLM's logging config did not
    try:
        with set_current_vllm_config(VllmConfig()), vllm_log_records() as records:
            kernel = init_fp8_linear_kernel(kFp8DynamicTokenSym, kFp8StaticTensorSym,
                                            input_dtype, input_dtype, weight_shape,
                                            module_name="layer")
    finally:
        vllm_logger.setLevel(level)
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
