# SPDX-License-Identifier: Apache-2.0
"""The fork's FP8 linear kernels in vLLM's kernel selection.

register_custom_fp8_kernels() (called from kernels/linear/__init__.py, patch
0005) puts them first in the CUDA and CPU priority lists and maps
`--linear-backend custom_fp8` to them. They take every FP8 linear method that
goes through init_fp8_linear_kernel (fp8.py, online fp8, compressed-tensors,
...) where supported: CUDA compute capability 9.0 with a custom_fp8 CUDA
backend, or the CPU. Elsewhere, or for a layer they cannot serve, selection
moves on to upstream's kernels and one log line says why.
VLLM_CUSTOM_FP8_DISABLE=1 switches them off.

Block FP8 on Hopper: where upstream's own choice for a block layer is one of
FASTER_UPSTREAM_BLOCK_KERNELS (DeepGEMM, or FlashInfer below M = 32 with
DeepGEMM above), our block class steps aside and upstream's kernel serves the
layer: measured on the H100, ours is slower there (docs/support.md, "Block
FP8"). VLLM_CUSTOM_FP8_BLOCK_HANDBACK=0 or `--linear-backend custom_fp8` keeps
ours.

Both classes override apply_weights and call vllm.custom_fp8.linear.fp8_linear
(our quant op + our GEMM) themselves: under vLLM's default torch.compile the
inherited QuantFP8 step would become Inductor code instead of our kernel.
"""

import os

import torch

from vllm.custom_fp8 import CUDA_BACKEND, block_scaled_mm, scaled_mm
from vllm.custom_fp8.linear import ActivationScheme, fp8_linear
from vllm.custom_fp8.numerics import BLOCK_K, GEMM_ALIGNMENT
from vllm.logger import init_logger
from vllm.model_executor.layers.quantization.utils.quant_utils import (
    GroupShape,
    kFp8DynamicTensorSym,
    kFp8DynamicTokenSym,
    kFp8StaticChannelSym,
    kFp8StaticTensorSym,
)
from vllm.platforms import PlatformEnum, current_platform

from .BlockScaledMMLinearKernel import Fp8BlockScaledMMLinearKernel
from .ScaledMMLinearKernel import FP8ScaledMMLinearKernel, FP8ScaledMMLinearLayerConfig

logger = init_logger(__name__)

DISABLE_ENV = "VLLM_CUSTOM_FP8_DISABLE"
BLOCK_HANDBACK_ENV = "VLLM_CUSTOM_FP8_BLOCK_HANDBACK"
LINEAR_BACKEND = "custom_fp8"

# Upstream block kernels faster than ours wherever they run (H100, fork at
# cfdb173: our block layer 0.87x DeepGEMM's over 60 points, slower at 46).
# Named, not imported: the names are the same in 0.25.1, 0.32.0 and 0.33.0,
# and a class that a release lacks is simply never upstream's choice.
FASTER_UPSTREAM_BLOCK_KERNELS = ("FlashInferFp8DeepGEMMDynamicBlockScaledKernel",
                                 "DeepGemmFp8BlockScaledMMKernel")

_SCHEMES = {
    kFp8StaticTensorSym: ActivationScheme.STATIC_TENSOR,
    kFp8DynamicTensorSym: ActivationScheme.DYNAMIC_TENSOR,
    kFp8DynamicTokenSym: ActivationScheme.DYNAMIC_TOKEN,
}
_WEIGHT_KEYS = (kFp8StaticTensorSym, kFp8StaticChannelSym)
_DTYPES = (torch.bfloat16, torch.float16)


def platform_supported() -> tuple[bool, str | None]:
    """Whether an implementation of our ops exists for this platform."""
    if os.environ.get(DISABLE_ENV) == "1":
        return False, f"switched off by {DISABLE_ENV}=1"
    if current_platform.is_cpu():
        return True, None
    if not current_platform.is_cuda():
        return False, "needs CUDA (compute capability 9.0) or the CPU"
    if CUDA_BACKEND is None:
        return False, "has no CUDA backend (neither the sm_90a library nor Triton loaded)"
    capability = current_platform.get_device_capability()
    if capability is None or capability.to_int() != 90:
        return False, f"needs compute capability 9.0 (sm_90a kernels), got {capability}"
    return True, None


def _decline(layer_kind: str, reason: str) -> tuple[bool, str]:
    """One log line per distinct reason (not per layer), then upstream's turn."""
    logger.info_once("custom_fp8: a %s %s; upstream's kernel serves it", layer_kind, reason,
                     scope="global")
    return False, reason


def _linear_backend_is_ours() -> bool:
    """`--linear-backend custom_fp8` (or, from 0.30, its per-quantization
    form) asks for our kernels explicitly."""
    from vllm.config import get_current_vllm_config_or_none

    config = get_current_vllm_config_or_none()
    if config is None:
        return False
    kernel_config = config.kernel_config
    per_quant = getattr(kernel_config, "linear_backend_per_quant", None) or {}
    return LINEAR_BACKEND in (kernel_config.linear_backend, *per_quant.values())


def _faster_upstream_block_kernel(c: FP8ScaledMMLinearLayerConfig) -> str | None:
    """Upstream's choice for this block layer (the first kernel after ours in
    its priority list that is enabled, supported and can implement it), if it
    is one that is faster than ours."""
    if os.environ.get(BLOCK_HANDBACK_ENV) == "0" or _linear_backend_is_ours():
        return None
    # Imported here: this module is imported while kernels/linear/__init__.py loads.
    from vllm.model_executor.kernels.linear import (
        _POSSIBLE_FP8_BLOCK_KERNELS,
        is_supported_and_can_implement_kernel,
    )

    for kernel in _POSSIBLE_FP8_BLOCK_KERNELS.get(current_platform._enum, ()):
        if kernel is CustomFp8BlockScaledMMKernel:
            continue
        if is_supported_and_can_implement_kernel(kernel, c, None)[0]:
            return kernel.__name__ if kernel.__name__ in FASTER_UPSTREAM_BLOCK_KERNELS else None
    return None


def _gemm_shape_supported(c: FP8ScaledMMLinearLayerConfig) -> str | None:
    k, n = c.weight_shape[1], c.weight_shape[0]
    if k % GEMM_ALIGNMENT or n % GEMM_ALIGNMENT:
        return f"needs K and N divisible by {GEMM_ALIGNMENT}, got N={n}, K={k}"
    if c.out_dtype not in _DTYPES or c.input_dtype not in _DTYPES:
        return f"needs bf16/fp16 activations, got {c.input_dtype} -> {c.out_dtype}"
    return None


class CustomFp8ScaledMMLinearKernel(FP8ScaledMMLinearKernel):
    """Per-tensor / per-channel FP8 weights; static per-tensor, dynamic
    per-tensor or dynamic per-token activations."""

    @classmethod
    def is_supported(cls, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return platform_supported()

    @classmethod
    def can_implement(cls, c: FP8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        if c.activation_quant_key not in _SCHEMES:
            return _decline("layer", f"has activation quant {c.activation_quant_key}")
        if c.weight_quant_key not in _WEIGHT_KEYS:
            return _decline("layer", f"has weight quant {c.weight_quant_key}")
        why = _gemm_shape_supported(c)
        return _decline("layer", why) if why else (True, None)

    @property
    def scheme(self) -> ActivationScheme:
        return _SCHEMES[self.config.activation_quant_key]

    def apply_weights(self, layer: torch.nn.Module, x: torch.Tensor,
                      bias: torch.Tensor | None = None) -> torch.Tensor:
        w, w_s, x_s, x_s_ub = self._get_layer_params(layer)
        return fp8_linear(x, w, w_s, self.scheme, self.config.out_dtype, input_scale=x_s,
                          input_scale_ub=x_s_ub, bias=bias)

    def apply_scaled_mm(self, *, A: torch.Tensor, B: torch.Tensor, out_dtype: torch.dtype,
                        As: torch.Tensor, Bs: torch.Tensor, bias: torch.Tensor | None,
                        output_shape: list) -> torch.Tensor:
        return scaled_mm(A, B, As, Bs, out_dtype, bias).view(*output_shape)


class CustomFp8BlockScaledMMKernel(Fp8BlockScaledMMLinearKernel):
    """128x128-block FP8 weights with dynamic 1x128-group activations."""

    @classmethod
    def is_supported(cls, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return platform_supported()

    @classmethod
    def can_implement(cls, c: FP8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        ok, reason = super().can_implement(c)
        if not ok:
            return _decline("block layer", reason)
        if c.activation_quant_key.scale.group_shape != GroupShape(1, BLOCK_K):
            return _decline("block layer", f"has activation groups "
                            f"{c.activation_quant_key.scale.group_shape}, not 1x{BLOCK_K}")
        if c.weight_quant_key.scale.group_shape != GroupShape(BLOCK_K, BLOCK_K):
            return _decline("block layer", f"has weight blocks "
                            f"{c.weight_quant_key.scale.group_shape}, not {BLOCK_K}x{BLOCK_K}")
        why = _gemm_shape_supported(c)
        if why is None and c.weight_shape[1] % BLOCK_K:
            why = f"needs K divisible by {BLOCK_K}, got {c.weight_shape[1]}"
        if why is None and (faster := _faster_upstream_block_kernel(c)):
            why = (f"is faster on upstream's {faster} on this GPU (docs/support.md; "
                   f"{BLOCK_HANDBACK_ENV}=0 keeps ours)")
        return _decline("block layer", why) if why else (True, None)

    @staticmethod
    def _block_scale(params) -> torch.Tensor:
        # Fp8LinearMethod names it weight_scale_inv, compressed-tensors weight_scale.
        return params.weight_scale_inv if params.weight_scale_inv is not None \
            else params.weight_scale

    def apply_weights(self, layer: torch.nn.Module, x: torch.Tensor,
                      bias: torch.Tensor | None = None, **kwargs) -> torch.Tensor:
        params = self._get_layer_params(layer)
        return fp8_linear(x, params.weight.t(), self._block_scale(params).t(),
                          ActivationScheme.DYNAMIC_GROUP, self.config.out_dtype, bias=bias)

    def apply_block_scaled_mm(self, A: torch.Tensor, B: torch.Tensor, As: torch.Tensor,
                              Bs: torch.Tensor) -> torch.Tensor:
        return block_scaled_mm(A, B.t(), As, Bs.t(), self.config.out_dtype)


def register_custom_fp8_kernels(backend_map: dict, fp8_kernels: dict, block_kernels: dict) -> None:
    """First place in the CUDA and CPU lists; `--linear-backend custom_fp8`."""
    backend_map[LINEAR_BACKEND] = {CustomFp8ScaledMMLinearKernel, CustomFp8BlockScaledMMKernel}
    for kernels, ours in ((fp8_kernels, CustomFp8ScaledMMLinearKernel),
                          (block_kernels, CustomFp8BlockScaledMMKernel)):
        for platform in (PlatformEnum.CUDA, PlatformEnum.CPU):
            kernels.setdefault(platform, []).insert(0, ours)
