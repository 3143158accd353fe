# SPDX-License-Identifier: Apache-2.0
"""Triton implementations of the custom_fp8 ops, the CUDA backend when the
compiled extension is absent (_library.py registers them by op name). Same
signatures and semantics as cpu.py. Importing this package raises
ImportError when triton is not installed."""

from .block_scaled_mm import block_scaled_mm
from .fused_quant import (
    rms_norm_dynamic_per_token_fp8_quant,
    rms_norm_per_token_group_fp8_quant,
    rms_norm_static_fp8_quant,
    silu_and_mul_dynamic_per_token_fp8_quant,
    silu_and_mul_per_token_group_fp8_quant,
    silu_and_mul_static_fp8_quant,
)
from .quant import (
    dynamic_per_token_scaled_fp8_quant,
    dynamic_scaled_fp8_quant,
    per_token_group_fp8_quant,
    static_scaled_fp8_quant,
)
from .scaled_mm import scaled_mm

__all__ = [
    "block_scaled_mm",
    "dynamic_per_token_scaled_fp8_quant",
    "dynamic_scaled_fp8_quant",
    "per_token_group_fp8_quant",
    "rms_norm_dynamic_per_token_fp8_quant",
    "rms_norm_per_token_group_fp8_quant",
    "rms_norm_static_fp8_quant",
    "scaled_mm",
    "silu_and_mul_dynamic_per_token_fp8_quant",
    "silu_and_mul_per_token_group_fp8_quant",
    "silu_and_mul_static_fp8_quant",
    "static_scaled_fp8_quant",
]
