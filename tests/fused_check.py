# SPDX-License-Identifier: Apache-2.0
"""Acceptance check of the fused producer + FP8 quant ops against float64.

The producers round where Inductor's code for vLLM's native ops does, once
(docs/numerics.md, "Fused producers"; T is the input dtype):
    RMSNorm       z = x, or x + residual in float32 (T(z) written back to residual)
                  r = 1 / sqrt(mean(z * z) + eps)              float32
                  y = T((z * r) * w)                           one rounding to T
    SiLU-and-mul  y = T(silu(gate) * up), silu = gate / (1 + exp(-gate)) in float32
and y is quantized by the rules of the standalone ops (tests/reference.py).
Every step but two is exact IEEE arithmetic whose result no implementation
can change, so the check replays those steps bit for bit. The two:
  * r, whose float32 value depends on the order of the sum of squares and on
    rsqrt's accuracy. A row is accepted when some float32 r within R_ULPS
    ulps of the correctly rounded float64 r reproduces the whole row (codes
    and scales) bit for bit; the check returns how far each row's r was.
  * the float32 silu, which depends on exp's accuracy. The check brackets it
    by the float32 values SILU_REL (relative) either side of the float64
    silu. Where the bracket straddles a rounding boundary of T (an
    "ambiguous" element) either rounding is accepted, and the row or group
    scale may lie anywhere between the scales of the two choices; everywhere
    else the codes must be exact. The check returns the number of ambiguous
    elements and of codes that are not those of the correctly rounded
    float32 silu; the tests bound both.
"""

import numpy as np
import torch

import reference as ref
from conftest import FP8, activation, poisoned
from vllm.custom_fp8.numerics import GROUP_SIZE, tma_aligned_size

# Float32 ulps of r accepted around the correctly rounded value. Bound: the
# CUDA kernel sums at most K / 256 squares per thread (K <= 18944 here), then
# a 10-level tree, so the sum is off by at most (K / 256 + 10) * 2^-24
# relative, r by half of that (<= 42 ulps) plus rsqrtf's 2 ulps; torch's and
# Triton's sums are tree-shaped, tighter still.
R_ULPS = 64
# Relative bound of the float32 silu: exp within 2 ulps (CUDA's expf and
# libdevice's; torch's and numpy's are within 1), 1 + e and the division
# within 0.5 ulp each: at most 3 ulps, below 8 * 2^-24.
SILU_REL = 2.0**-21
# expf overflows to inf past this result, making silu(gate) exactly -0.0.
_FLOAT32_OVERFLOW = 2.0**128

MODES = ["static", "per_token", "per_token_ub", "group"]
STATIC_SCALE = 0.0173
SCALE_UB = 0.05
EPS = 1e-6
_OP_SUFFIX = {"static": "static_fp8_quant", "per_token": "dynamic_per_token_fp8_quant",
              "per_token_ub": "dynamic_per_token_fp8_quant", "group": "per_token_group_fp8_quant"}


def rms_norm_operands(m: int, k: int, dtype, device, seed: int):
    """(x, weight, residual): hidden states and residual as conftest.activation
    makes them; weights around 1 with a few large ones, as trained RMSNorm
    weights are."""
    x = activation(m, k, dtype, device, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    weight = (1 + 0.3 * torch.randn(k, generator=g)) * torch.where(
        torch.rand(k, generator=g) < 0.01, 8.0, 1.0)
    residual = activation(m, k, dtype, device, seed=seed + 2)
    return x, weight.to(dtype).to(device), residual


def op_name(family: str, mode: str) -> str:
    """The op of `family` ("rms_norm", "silu_and_mul") in scale mode `mode`."""
    return f"{family}_{_OP_SUFFIX[mode]}"


def scale_args(mode: str, rows: int, k: int, device, column_major: bool = False):
    """(scale, extra args) of the op of `mode` for out [rows, k]: the static
    scale, or a poisoned scale buffer and scale_ub / group_size."""
    if mode == "static":
        return torch.tensor([STATIC_SCALE], device=device), ()
    if mode.startswith("per_token"):
        ub = torch.tensor([SCALE_UB], device=device) if mode == "per_token_ub" else None
        return poisoned((rows, 1), torch.float32, device), (ub,)
    strides = (1, tma_aligned_size(rows)) if column_major else None
    return poisoned((rows, k // GROUP_SIZE), torch.float32, device, strides), (GROUP_SIZE,)


def run_rms_norm(impl, mode: str, x, weight, residual, rows=None, column_major=False):
    """impl's rms_norm op of `mode` (impl: torch.ops._custom_fp8 or a backend
    module) into poisoned outputs; returns (out, scale). Updates residual."""
    rows = x.shape[0] if rows is None else rows
    out = poisoned((rows, x.shape[1]), FP8, x.device)
    scale, extra = scale_args(mode, rows, x.shape[1], x.device, column_major)
    getattr(impl, op_name("rms_norm", mode))(out, x, weight, scale, EPS, *extra, residual)
    return out, scale


def run_silu_and_mul(impl, mode: str, x, rows=None, column_major=False):
    rows = x.shape[0] if rows is None else rows
    out = poisoned((rows, x.shape[1] // 2), FP8, x.device)
    scale, extra = scale_args(mode, rows, x.shape[1] // 2, x.device, column_major)
    getattr(impl, op_name("silu_and_mul", mode))(out, x, scale, *extra)
    return out, scale


def bits(a) -> np.ndarray:
    """Bit patterns, so that NaN poison and signed zeros never compare equal by value."""
    if isinstance(a, torch.Tensor):
        a = a.cpu()
        return a.view({1: torch.uint8, 2: torch.int16, 4: torch.int32}[a.element_size()]).numpy()
    return np.asarray(a).view(np.int32)


def expected_quant(mode: str, y: torch.Tensor):
    """(codes, scales) the standalone op of `mode` gives y (no padding)."""
    if mode == "static":
        return ref.static_quant(y, STATIC_SCALE), None
    if mode.startswith("per_token"):
        return ref.per_token_quant(y, SCALE_UB if mode == "per_token_ub" else None)
    return ref.group_quant(y)


def _outputs(mode: str, out: torch.Tensor, scale: torch.Tensor):
    codes = out.view(torch.uint8).cpu().numpy()
    scales = None if mode == "static" else scale.cpu().numpy().reshape(out.shape[0], -1)
    return codes, scales


def _check_padding(mode: str, codes: np.ndarray, scales, m: int) -> None:
    """Rows past M are those of an all-zero input row."""
    want_codes, want_scales = expected_quant(mode, torch.zeros(codes.shape[0] - m,
                                                               codes.shape[1]))
    np.testing.assert_array_equal(codes[m:], want_codes, err_msg="padding row codes")
    if scales is not None:
        np.testing.assert_array_equal(bits(scales[m:]), bits(want_scales),
                                      err_msg="padding row scales")


def rms_norm_input(x: torch.Tensor, residual: torch.Tensor | None) -> torch.Tensor:
    """z (float32): x, or x + residual. The float32 sum of two T values is one
    IEEE addition, so every backend gets these exact bits."""
    if residual is None:
        return x.cpu().float()
    return x.cpu().float() + residual.cpu().float()


def _ulp_offsets(n: int):
    yield 0
    for i in range(1, n + 1):
        yield i
        yield -i


def check_rms_norm_quant(mode: str, x, weight, epsilon: float, out, scale,
                         residual_in=None, residual_out=None) -> dict[int, int]:
    """Asserts that out (M' rows) and scale are rms_norm -> quant of x for a
    float32 r within R_ULPS of float64's on every row, and that residual_out
    is T(x + residual_in). Returns {r offset in ulps: rows}."""
    dtype = x.dtype
    m = x.shape[0]
    z = rms_norm_input(x, residual_in)
    if residual_in is not None:
        np.testing.assert_array_equal(bits(residual_out), bits(z.to(dtype)), err_msg="residual")
    codes, scales = _outputs(mode, out, scale)
    _check_padding(mode, codes, scales, m)

    zd = z.double()
    eps32 = float(np.float32(epsilon))  # the kernels add epsilon as float32
    r_bits = (1.0 / torch.sqrt((zd * zd).mean(dim=1, keepdim=True) + eps32)).float().view(
        torch.int32)
    w = weight.cpu().float()
    pending = np.arange(m)
    rows_at = {}
    for offset in _ulp_offsets(R_ULPS):
        if pending.size == 0:
            break
        idx = torch.from_numpy(pending)
        r = (r_bits[idx] + offset).view(torch.float32)
        y = (z[idx] * r * w).to(dtype)
        want_codes, want_scales = expected_quant(mode, y)
        ok = (codes[pending] == want_codes).all(axis=1)
        if want_scales is not None:
            ok &= (bits(scales[pending]) == bits(want_scales)).all(axis=1)
        if ok.any():
            rows_at[offset] = int(ok.sum())
        pending = pending[~ok]
    assert pending.size == 0, (
        f"{pending.size} of {m} rows match no float32 r within {R_ULPS} ulps of the float64 "
        f"value, first row {pending[0]}")
    return rows_at


def silu_and_mul_bracket(x: torch.Tensor):
    """(y_near, y_a, y_b): T(silu(gate) * up) for the correctly rounded
    float32 silu and for the float32 silu at either end of its bracket (the
    float32 product and its rounding are monotone in the silu); y_a == y_b
    except at ambiguous elements."""
    n = x.shape[1] // 2
    gate, up = x[:, :n].cpu().double(), x[:, n:].cpu().float()
    e = torch.exp(-gate)
    silu = gate / (1.0 + e)
    mag_lo = torch.where(e * (1 + SILU_REL) >= _FLOAT32_OVERFLOW, 0.0, silu.abs() * (1 - SILU_REL))
    mag_hi = torch.where(e * (1 - SILU_REL) >= _FLOAT32_OVERFLOW, 0.0, silu.abs() * (1 + SILU_REL))
    # float32 ends outside the float64 bracket, so any float32 in it lies between.
    lo = torch.nextafter(mag_lo.float(), torch.zeros(()))
    hi = torch.nextafter(mag_hi.float(), torch.full((), float("inf")))
    sign = torch.where(torch.signbit(gate), -1.0, 1.0).float()
    near = torch.where(e >= _FLOAT32_OVERFLOW, sign * 0.0, silu.float())
    return tuple((s * up).to(x.dtype) for s in (near, sign * lo, sign * hi))


def check_silu_and_mul_quant(mode: str, x, out, scale) -> tuple[int, int]:
    """Asserts that out (M' rows) and scale are silu_and_mul -> quant of x, up
    to the float32 silu's accuracy. Returns (ambiguous elements, elements whose
    code is not that of the correctly rounded float32 silu)."""
    m = x.shape[0]
    codes, scales = _outputs(mode, out, scale)
    _check_padding(mode, codes, scales, m)
    y_near, y_a, y_b = silu_and_mul_bracket(x)
    ambiguous = int((bits(y_a) != bits(y_b)).sum())
    got = codes[:m]
    if mode == "static":
        near, a, b = (ref.static_quant(y, STATIC_SCALE) for y in (y_near, y_a, y_b))
    else:
        got_scales = scales[:m]
        smaller = torch.where(y_a.abs() <= y_b.abs(), y_a, y_b)
        larger = torch.where(y_a.abs() <= y_b.abs(), y_b, y_a)
        if mode == "group":
            low, high = ref.group_scales(smaller), ref.group_scales(larger)
            near, a, b = (ref.group_codes(y, got_scales) for y in (y_near, y_a, y_b))
        else:
            ub = SCALE_UB if mode == "per_token_ub" else None
            low, high = ref.per_token_quant(smaller, ub)[1], ref.per_token_quant(larger, ub)[1]
            near, a, b = (ref.per_token_codes(y, got_scales) for y in (y_near, y_a, y_b))
        # Scales are monotone in the absmax: either choice of each ambiguous
        # element lands between (and exactly on it where there is none).
        assert np.all((low <= got_scales) & (got_scales <= high)), "scales off the bracket"
    wrong = (got != a) & (got != b)
    assert not wrong.any(), f"{int(wrong.sum())} codes differ, first at {np.argwhere(wrong)[0]}"
    return ambiguous, int((got != near).sum())
