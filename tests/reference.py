# SPDX-License-Identifier: Apache-2.0
"""Kernel-independent references for the custom_fp8 ops.

Quant: upstream vLLM 0.25.1's CUDA rules replayed step by step in numpy
float32 (IEEE single, like the GPU without fast math), with an e4m3 encoder
built from the format's definition, not from torch's conversion.
GEMMs: the same FP8 codes dequantized in float64.
"""

import numpy as np
import torch

from vllm.custom_fp8.numerics import BLOCK_K, BLOCK_N, FP8_MAX, GROUP_EPS, PER_TOKEN_MIN_SCALE

F32 = np.float32


def _e4m3_values() -> np.ndarray:
    """float64 value of every non-negative e4m3fn code 0x00..0x7E (0x7F is NaN)."""
    codes = np.arange(0x7F)
    exp, man = codes >> 3, codes & 7
    normal = (1 + man / 8.0) * np.exp2(exp - 7.0)
    subnormal = man / 8.0 * 2.0**-6
    return np.where(exp == 0, subnormal, normal)


_E4M3 = _e4m3_values()


def encode_e4m3(y: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even e4m3fn codes (uint8) of finite |y| <= 448."""
    y = np.asarray(y, dtype=np.float64)
    assert np.all(np.isfinite(y)) and np.all(np.abs(y) <= FP8_MAX)
    mag = np.abs(y)
    hi = np.clip(np.searchsorted(_E4M3, mag, side="left"), 0, len(_E4M3) - 1)
    lo = np.clip(hi - 1, 0, None)
    d_hi, d_lo = np.abs(_E4M3[hi] - mag), np.abs(mag - _E4M3[lo])
    take_lo = (d_lo < d_hi) | ((d_lo == d_hi) & (lo % 2 == 0))
    code = np.where(take_lo, lo, hi).astype(np.uint8)
    # The sign survives rounding to zero: -0.0 and tiny negatives give 0x80.
    return np.where(np.signbit(y), code | 0x80, code).astype(np.uint8)


def _f32(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().float().numpy()


def _nan_ignoring_absmax(x: np.ndarray, axis=None, start: float = 0.0) -> np.ndarray:
    a = np.where(np.isnan(x), F32(0), np.abs(x))
    return np.maximum(F32(start), a.max(axis=axis, keepdims=axis is not None, initial=F32(0)))


def _clamp_min_first(y):  # fmaxf(-448, fminf(y, 448)): NaN -> +448
    return np.fmax(F32(-FP8_MAX), np.fmin(y, F32(FP8_MAX)))


def _clamp_max_first(y):  # fminf(fmaxf(y, -448), 448): NaN -> -448
    return np.fmin(np.fmax(y, F32(-FP8_MAX)), F32(FP8_MAX))


def _padded(codes: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros((rows, codes.shape[1]), dtype=np.uint8)
    out[: codes.shape[0]] = codes
    return out


def static_quant(x: torch.Tensor, scale: float, rows: int | None = None) -> np.ndarray:
    xf = _f32(x)
    with np.errstate(all="ignore"):
        inv = F32(1) / F32(scale)
        codes = encode_e4m3(_clamp_min_first(xf * inv))
    return _padded(codes, rows or xf.shape[0])


def dynamic_tensor_quant(x: torch.Tensor, rows: int | None = None):
    xf = _f32(x)
    with np.errstate(all="ignore"):
        scale = F32(_nan_ignoring_absmax(xf) / F32(FP8_MAX))
    return static_quant(x, scale, rows), scale


def per_token_scales(amax: np.ndarray, scale_ub: float | None = None) -> np.ndarray:
    """max(fminf(amax, ub) / 448, 1 / (448 * 512)) in float32, per row."""
    if scale_ub is not None:
        amax = np.fmin(amax, F32(scale_ub))
    with np.errstate(all="ignore"):
        return np.maximum(amax / F32(FP8_MAX), F32(PER_TOKEN_MIN_SCALE)).astype(F32)


def per_token_codes(x: torch.Tensor, scales: np.ndarray) -> np.ndarray:
    """RNE(fmaxf(-448, fminf(x / s, 448))) with the given float32 row scales [M, 1]."""
    with np.errstate(all="ignore"):
        return encode_e4m3(_clamp_min_first(_f32(x) / np.asarray(scales, dtype=F32)))


def per_token_quant(x: torch.Tensor, scale_ub: float | None = None, rows: int | None = None):
    xf = _f32(x)
    s = per_token_scales(_nan_ignoring_absmax(xf, axis=1), scale_ub)
    codes = per_token_codes(x, s)
    rows = rows or xf.shape[0]
    scales = np.full((rows, 1), F32(PER_TOKEN_MIN_SCALE), dtype=F32)
    scales[: xf.shape[0]] = s
    return _padded(codes, rows), scales


def group_scales(x: torch.Tensor, group_size: int = 128) -> np.ndarray:
    """max(1e-10, absmax) / 448 in float32 of each 1 x group_size group: [M, K/g]."""
    xf = _f32(x)
    m, k = xf.shape
    amax = _nan_ignoring_absmax(xf.reshape(m, k // group_size, group_size), axis=2,
                                start=F32(GROUP_EPS))
    with np.errstate(all="ignore"):
        return (amax / F32(FP8_MAX)).astype(F32)[..., 0]


def group_codes(x: torch.Tensor, scales: np.ndarray, group_size: int = 128) -> np.ndarray:
    """RNE(fminf(fmaxf(x / s, -448), 448)) with the given float32 group scales [M, K/g]."""
    xf = _f32(x)
    m, k = xf.shape
    g = xf.reshape(m, k // group_size, group_size)
    with np.errstate(all="ignore"):
        s = np.asarray(scales, dtype=F32)[..., None]
        return encode_e4m3(_clamp_max_first(g / s)).reshape(m, k)


def group_quant(x: torch.Tensor, group_size: int = 128, rows: int | None = None):
    m, k = x.shape
    s = group_scales(x, group_size)
    codes = group_codes(x, s, group_size)
    rows = rows or m
    scales = np.full((rows, k // group_size), F32(GROUP_EPS) / F32(FP8_MAX), dtype=F32)
    scales[:m] = s
    return _padded(codes, rows), scales


def scaled_mm(a, b, scale_a, scale_b, bias=None) -> torch.Tensor:
    """float64 (scale_a * a) @ (scale_b * b) + bias from the same FP8 codes."""
    sa = scale_a.double().reshape(-1, 1) if scale_a.numel() > 1 else scale_a.double().reshape(())
    sb = scale_b.double().reshape(1, -1) if scale_b.numel() > 1 else scale_b.double().reshape(())
    out = (a.double() * sa) @ (b.double() * sb)
    return out + bias.double() if bias is not None else out


def scaled_mm_abs(a, b, scale_a, scale_b) -> torch.Tensor:
    """sum_k |a_k b_k| * |scales|: the magnitude accumulation errors scale with."""
    sa = scale_a.double().abs().reshape(-1, 1) if scale_a.numel() > 1 else scale_a.double().abs()
    sb = scale_b.double().abs().reshape(1, -1) if scale_b.numel() > 1 else scale_b.double().abs()
    return (a.double().abs() * sa) @ (b.double().abs() * sb)


def expand_block_scales(scale_a, scale_b, k: int, n: int):
    """Per-element float64 scales of a [M, K] and b [K, N] from the block scales."""
    sa = scale_a.double().repeat_interleave(BLOCK_K, dim=1)
    sb = scale_b.double().repeat_interleave(BLOCK_K, dim=0).repeat_interleave(BLOCK_N, dim=1)
    return sa[:, :k], sb[:k, :n]


def block_scaled_mm(a, b, scale_a, scale_b) -> torch.Tensor:
    sa, sb = expand_block_scales(scale_a, scale_b, a.shape[1], b.shape[1])
    return (a.double() * sa) @ (b.double() * sb)


def block_scaled_mm_abs(a, b, scale_a, scale_b) -> torch.Tensor:
    sa, sb = expand_block_scales(scale_a, scale_b, a.shape[1], b.shape[1])
    return (a.double().abs() * sa.abs()) @ (b.double().abs() * sb.abs())
