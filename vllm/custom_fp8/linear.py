# SPDX-License-Identifier: Apache-2.0
"""One FP8 linear layer on the fork's kernels: activation quant in the scheme
upstream vLLM selected for the checkpoint, then the FP8 GEMM with the dequant
(and bias) fused into its epilogue.

This is the function the vLLM kernel classes call
(vllm/model_executor/kernels/linear/scaled_mm/custom_fp8.py) and the one the
benchmark times (benchmarks/bench_fp8_linear.py): one dispatch for both.
"""

import enum

import torch

from . import block_scaled_mm, per_token_group_quant_fp8, scaled_fp8_quant, scaled_mm


class ActivationScheme(enum.Enum):
    STATIC_TENSOR = "static per-tensor"   # serialized checkpoints with input_scale
    DYNAMIC_TENSOR = "dynamic per-tensor"  # online quantization="fp8"
    DYNAMIC_TOKEN = "dynamic per-token"    # serialized FP8 on CUTLASS-capable GPUs
    DYNAMIC_GROUP = "dynamic 1x128 group"  # block FP8 (weight_block_size [128, 128])


def fp8_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    weight_scale: torch.Tensor,
    scheme: ActivationScheme,
    out_dtype: torch.dtype | None = None,
    input_scale: torch.Tensor | None = None,
    input_scale_ub: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """y[..., N] = dequant(quant(x[..., K]) @ weight) + bias.

    weight is [K, N] (the transpose of the row-major [N, K] checkpoint
    weight); weight_scale is per-tensor/per-channel, or for DYNAMIC_GROUP the
    [K/128, N/128] transpose of weight_scale_inv.
    """
    out_dtype = out_dtype or x.dtype
    x2d = x.reshape(-1, x.shape[-1])
    if scheme is ActivationScheme.DYNAMIC_GROUP:
        q, q_scale = per_token_group_quant_fp8(x2d, column_major_scales=True,
                                               tma_aligned_scales=True)
        out = block_scaled_mm(q, weight, q_scale, weight_scale, out_dtype)
        if bias is not None:
            out += bias
    else:
        per_token = scheme is ActivationScheme.DYNAMIC_TOKEN
        q, q_scale = scaled_fp8_quant(
            x2d,
            input_scale if scheme is ActivationScheme.STATIC_TENSOR else None,
            scale_ub=input_scale_ub if per_token else None,
            use_per_token_if_dynamic=per_token,
        )
        out = scaled_mm(q, weight, q_scale, weight_scale, out_dtype, bias)
    return out.view(*x.shape[:-1], weight.shape[1])
