# SPDX-License-Identifier: Apache-2.0
"""Numeric constants shared by every backend (CUDA, Triton, CPU), and the
error metric the tests and the benchmark validate GEMMs with.

They reproduce upstream vLLM 0.25.1's CUDA quant ops bit for bit
(csrc/libtorch_stable/quantization/w8a8/fp8/common.cu and
per_token_group_quant.cu); docs/numerics.md explains each rule.
"""

import torch

FP8_DTYPE = torch.float8_e4m3fn
FP8_MAX = 448.0

# Per-token scales are clamped from below to 1 / (448 * 512), computed in
# float32 exactly as upstream's min_scaling_factor<Float8_e4m3fn>::val().
PER_TOKEN_MIN_SCALE = float(torch.tensor(1.0, dtype=torch.float32) / (448.0 * 512.0))

# Per-token-group quant: the group absmax starts at eps (upstream's default).
GROUP_SIZE = 128
GROUP_EPS = 1e-10

# The CUDA GEMM reads A and B with TMA: K and N must keep 16-byte rows.
GEMM_ALIGNMENT = 16
# Block-scaled GEMM: 1x128 activation groups, 128x128 weight blocks.
BLOCK_K = 128
BLOCK_N = 128


def tma_aligned_size(m: int, alignment: int = 4) -> int:
    """Rows of a column-major group-scale tensor padded for TMA (16 bytes)."""
    return (m + alignment - 1) // alignment * alignment


def cdiv(a: int, b: int) -> int:
    return (a + b - 1) // b


def rel_error(x: torch.Tensor, y: torch.Tensor) -> float:
    """The relative-error metric every GEMM check uses (../shared/STANDARDS.md
    section 1, the tests and the benchmark's validation): 1 - 2<x,y> /
    (|x|^2 + |y|^2), in float64; 0 for equal tensors, ~0.5 |x-y|^2/|x|^2."""
    x, y = x.double().flatten(), y.double().flatten()
    denom = (x * x).sum() + (y * y).sum()
    return float(1 - 2 * (x * y).sum() / denom) if denom > 0 else 0.0

