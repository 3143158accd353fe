# SPDX-License-Identifier: Apache-2.0
"""The Triton kernels (vllm.custom_fp8.triton), called directly.

Without a GPU they run in Triton's CPU interpreter at small shapes; with an
sm_89+ GPU they are compiled and also run at larger shapes (marked `gpu`).
Quant codes and scales must be bit-identical to cpu.py; the GEMMs must pass
the project's acceptance check against a float64 product of the same FP8
codes (tests/gemm_check.py). Output buffers start poisoned (NaN codes and
values), so an element a kernel fails to write fails the test.
"""

import math
import os

import pytest
import torch

# @triton.jit picks the interpreter when it decorates a kernel, so the choice
# is made before the kernels are imported. Set TRITON_INTERPRET=1 to
# interpret on a GPU machine.
if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
pytest.importorskip("triton")

from vllm.custom_fp8 import _library, cpu  # noqa: E402
from vllm.custom_fp8 import triton as triton_ops  # noqa: E402
from vllm.custom_fp8.numerics import (  # noqa: E402
    BLOCK_K,
    BLOCK_N,
    FP8_DTYPE,
    FP8_MAX,
    GROUP_SIZE,
    cdiv,
    tma_aligned_size,
)
from vllm.custom_fp8.triton import quant as triton_quant  # noqa: E402

import fused_check  # noqa: E402
import reference as ref  # noqa: E402
from conftest import activation, log_uniform, on_gpu_run, poisoned, random_fp8  # noqa: E402
from gemm_check import check_gemm  # noqa: E402

if triton_quant._INTERPRET.value != INTERPRETED:
    # A CUDA build of torch on a machine without a GPU registers (imports) the
    # kernels when conftest imports vllm.custom_fp8, before this module runs.
    pytest.skip("the Triton kernels were imported before the interpreter could be chosen; "
                "run with TRITON_INTERPRET=1", allow_module_level=True)
if not INTERPRETED and torch.cuda.get_device_capability() < (8, 9):
    pytest.skip("the Triton FP8 kernels need an sm_89+ GPU", allow_module_level=True)

DEVICE = "cpu" if INTERPRETED else "cuda"

pytestmark = [
    # Triton 3.6's interpreter converts 1-element arrays to ints, which numpy
    # deprecated (and numpy 2.4 refuses: triton-lang/triton#9171).
    pytest.mark.filterwarnings("ignore:Conversion of an array with ndim > 0:DeprecationWarning"),
    # The interpreter computes in numpy, which warns on the IEEE inf/NaN
    # arithmetic that the NaN, inf and zero-scale cases exercise on purpose.
    pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]


def gpu_cases(*values):
    """Larger shapes, for compiled kernels only: the interpreter would take
    minutes, so under it they are not collected at all."""
    if INTERPRETED or not on_gpu_run():
        return []
    return [pytest.param(v, marks=pytest.mark.gpu) for v in values]


def on_device(t):
    """A copy of `t` on DEVICE with the same strides (layouts are part of the test)."""
    if not isinstance(t, torch.Tensor):
        return t
    return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device=DEVICE).copy_(t)


def test_exports_every_op():
    assert sorted(triton_ops.__all__) == sorted(_library.SCHEMAS)
    for name in _library.SCHEMAS:
        assert callable(getattr(triton_ops, name))


# ---------------------------------------------------------------- quant

QUANT_MODES = ["static", "dynamic", "per_token", "per_token_ub",
               "group_row_major", "group_col_major", "group_col_major_tma"]
GROUP_MODES = [m for m in QUANT_MODES if m.startswith("group")]
DTYPES = [torch.bfloat16, torch.float16, torch.float32]
# (rows of input, rows of out): out rows beyond the input are padding.
ROWS = [(1, 1), (1, 4), (5, 5), (33, 35)] + gpu_cases((1000, 1000), (2051, 2056))
HIDDEN = [1, 17, 100, 128, 384] + gpu_cases(4096, 5000, 8320)
GROUP_HIDDEN = [128, 384] + gpu_cases(7168, 8320)


def finite_absmax(x: torch.Tensor, dim=None) -> torch.Tensor:
    a = x.float().abs().nan_to_num(nan=0.0, posinf=0.0)
    return a.amax() if dim is None else a.amax(dim=dim)


def quant_args(mode: str, x: torch.Tensor, rows_out: int):
    """(op name, args) of quant `mode` on CPU input `x`, outputs poisoned."""
    out = poisoned((rows_out, x.shape[1]), FP8_DTYPE, "cpu")
    if mode == "static":
        # 0.8 x the dynamic scale: the largest values saturate at +-448.
        amax = float(finite_absmax(x)) if x.numel() else 0.0
        scale = torch.tensor([amax / FP8_MAX * 0.8 if amax > 0 else 1.0])
        return "static_scaled_fp8_quant", (out, x, scale)
    if mode == "dynamic":
        return "dynamic_scaled_fp8_quant", (out, x, poisoned((1,), torch.float32, "cpu"))
    if mode.startswith("per_token"):
        scale_ub = None
        if mode == "per_token_ub":
            # A bound between the rows' absmaxes: it clamps some rows, not others.
            row_amax = finite_absmax(x, dim=1) if x.numel() else torch.zeros(1)
            scale_ub = torch.tensor([float(row_amax.median()) or 1.0])
        scale = poisoned((rows_out, 1), torch.float32, "cpu")
        return "dynamic_per_token_scaled_fp8_quant", (out, x, scale, scale_ub)
    groups = x.shape[1] // GROUP_SIZE
    ld = tma_aligned_size(rows_out) if mode == "group_col_major_tma" else rows_out
    strides = None if mode == "group_row_major" else (1, ld)
    scale = poisoned((rows_out, groups), torch.float32, "cpu", strides)
    return "per_token_group_fp8_quant", (out, x, scale, GROUP_SIZE)


def assert_matches_cpu(op: str, *args) -> torch.Tensor:
    """Runs quant `op` from cpu.py on `args` and from Triton on device copies;
    asserts bit-identical codes and scales (args[0], args[2]); returns the
    reference scales."""
    device_args = [on_device(a) for a in args]
    getattr(triton_ops, op)(*device_args)
    getattr(cpu, op)(*args)
    out, scale = device_args[0].cpu(), device_args[2].cpu()
    assert torch.equal(out.view(torch.uint8), args[0].view(torch.uint8)), f"{op}: codes differ"
    # Bit patterns: NaN poison left in place, or a -0.0, must not compare equal.
    assert torch.equal(scale.view(torch.int32), args[2].view(torch.int32)), f"{op}: scales differ"
    return args[2]


def assert_quant_matches_cpu(mode: str, x: torch.Tensor, rows_out: int) -> torch.Tensor:
    op, args = quant_args(mode, x, rows_out)
    return assert_matches_cpu(op, *args)


def strided_activation(m: int, k: int, dtype: torch.dtype, contiguous: bool,
                       seed: int) -> torch.Tensor:
    """conftest.activation, or a view of it with row stride k + 8."""
    return activation(m, k if contiguous else k + 8, dtype, seed=seed)[:, :k]


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "row_stride"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", HIDDEN)
@pytest.mark.parametrize("rows", ROWS, ids=str)
@pytest.mark.parametrize("mode", [m for m in QUANT_MODES if m not in GROUP_MODES])
def test_quant_random(mode, rows, k, dtype, contiguous):
    m, rows_out = rows
    x = strided_activation(m, k, dtype, contiguous, seed=m * 7919 + k)
    assert_quant_matches_cpu(mode, x, rows_out)


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "row_stride"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", GROUP_HIDDEN)
@pytest.mark.parametrize("rows", ROWS, ids=str)
@pytest.mark.parametrize("mode", GROUP_MODES)
def test_group_quant_random(mode, rows, k, dtype, contiguous):
    m, rows_out = rows
    x = strided_activation(m, k, dtype, contiguous, seed=m * 7919 + k)
    assert_quant_matches_cpu(mode, x, rows_out)


def special_activation(kind: str, dtype: torch.dtype) -> torch.Tensor:
    """[6, 256] inputs for the NaN / inf / zero rules (two groups per row)."""
    x = torch.randn(6, 2 * GROUP_SIZE, generator=torch.Generator().manual_seed(1))
    if kind == "mixed":
        x[0, ::7] = float("nan")       # ignored by every absmax; a +448 or -448 code
        x[1, 3] = float("inf")         # infinite scale: finite values give 0, inf gives NaN
        x[1, -2] = float("-inf")
        x[2] = 0.0                     # all-zero row: the minimum or eps scale
        x[3] *= 1e-38                  # float32 subnormals (zero in fp16): subnormal codes
        x[4] = float("nan")            # all-NaN row
        x[5] *= 3e4                    # large values next to fp16's limit
    elif kind == "all_zero":
        x.zero_()                      # dynamic per-tensor: scale 0, every code +448
    elif kind == "all_nan":
        x.fill_(float("nan"))
    return x.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("kind", ["mixed", "all_zero", "all_nan"])
@pytest.mark.parametrize("mode", QUANT_MODES)
def test_quant_special_values(mode, kind, dtype):
    assert_quant_matches_cpu(mode, special_activation(kind, dtype), rows_out=8)


@pytest.mark.parametrize("scale_ub", [float("nan"), 0.0, 1e-30, float("inf")], ids=str)
def test_per_token_scale_ub_edge_values(scale_ub):
    """fminf(amax, ub): a NaN bound is ignored; 0 and tiny bounds give the minimum scale."""
    x = activation(5, 100, torch.bfloat16, seed=3)
    assert_matches_cpu("dynamic_per_token_scaled_fp8_quant",
                       poisoned((7, 100), FP8_DTYPE, "cpu"), x,
                       poisoned((7, 1), torch.float32, "cpu"), torch.tensor([scale_ub]))


@pytest.mark.parametrize("rows_out", [0, 3])
@pytest.mark.parametrize("mode", QUANT_MODES)
def test_quant_no_input_rows(mode, rows_out):
    """M == 0: nothing but padding (dynamic per-tensor still writes scale 0)."""
    assert_quant_matches_cpu(mode, torch.empty(0, 2 * GROUP_SIZE, dtype=torch.bfloat16), rows_out)


def e4m3_rounding_cases() -> torch.Tensor:
    """Every finite e4m3 value, the midpoints between neighbours (ties, where
    round-to-nearest-even decides), the float32 values either side of each
    midpoint, and values past 448 that must saturate; both signs."""
    values = torch.arange(0x7F, dtype=torch.uint8).view(FP8_DTYPE).float()  # 0 .. 448
    midpoints = (values[:-1] + values[1:]) / 2  # exact in float32
    around = torch.cat([torch.nextafter(midpoints, torch.zeros(())),
                        torch.nextafter(midpoints, torch.full((), math.inf))])
    beyond = torch.tensor([449.0, 463.9, 464.0, 480.0, 1e30, math.inf])
    positive = torch.cat([values, midpoints, around, beyond])
    return torch.cat([positive, -positive])


def rows_with_unit_scales(cases: torch.Tensor) -> torch.Tensor:
    """One float32 row holding `cases` (within +-448), with 448 first in every
    group of 128, so the per-tensor, per-token and group scales are all 1 and
    the codes are the conversion of `cases` themselves."""
    per_group = GROUP_SIZE - 1
    groups = cdiv(cases.numel(), per_group)
    padded = torch.zeros(groups * per_group)
    padded[:cases.numel()] = cases
    x = torch.empty(groups, GROUP_SIZE)
    x[:, 0] = FP8_MAX
    x[:, 1:] = padded.view(groups, per_group)
    return x.view(1, -1)


@pytest.mark.parametrize("mode", ["static", "dynamic", "per_token", "group_row_major"])
def test_quant_rounds_to_nearest_even(mode):
    """The float32 -> e4m3 conversion, value by value, at scale 1."""
    cases = e4m3_rounding_cases()
    if mode == "static":
        # A given scale of 1: the infinities and values far past 448 too.
        x = torch.zeros(1, cdiv(cases.numel(), GROUP_SIZE) * GROUP_SIZE)
        x[0, :cases.numel()] = cases
        assert_matches_cpu("static_scaled_fp8_quant", poisoned(x.shape, FP8_DTYPE, "cpu"), x,
                           torch.ones(1))
    else:
        x = rows_with_unit_scales(cases.clamp(-FP8_MAX, FP8_MAX))
        ref_scale = assert_quant_matches_cpu(mode, x, rows_out=1)
        assert torch.equal(ref_scale, torch.ones_like(ref_scale))


def test_quant_entry_points_check_arguments():
    x = torch.randn(4, GROUP_SIZE, device=DEVICE)
    out = torch.empty(4, GROUP_SIZE, dtype=FP8_DTYPE, device=DEVICE)
    half_scale = torch.ones(1, dtype=torch.float16, device=DEVICE)
    with pytest.raises(ValueError, match="static_scaled_fp8_quant: 'scale' must be torch.float32"):
        triton_ops.static_scaled_fp8_quant(out, x, half_scale)
    with pytest.raises(ValueError, match="dynamic_scaled_fp8_quant: 'out' must be"):
        triton_ops.dynamic_scaled_fp8_quant(out[:2], x, torch.empty(1, device=DEVICE))
    with pytest.raises(ValueError, match="dynamic_per_token_scaled_fp8_quant: 'scale' must be"):
        triton_ops.dynamic_per_token_scaled_fp8_quant(out, x, torch.empty(3, device=DEVICE), None)
    with pytest.raises(ValueError, match="per_token_group_fp8_quant: 'group_size' must be"):
        triton_ops.per_token_group_fp8_quant(out, x, torch.empty(4, 2, device=DEVICE), 64)


# ---------------------------------------------------------------- fused producer + quant

FUSED_ROWS = [1, 5] + gpu_cases(64, 257)
FUSED_HIDDEN = [100, 128, 384] + gpu_cases(4096, 5120, 14336)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("k", FUSED_HIDDEN)
@pytest.mark.parametrize("m", FUSED_ROWS)
@pytest.mark.parametrize("with_residual", [False, True], ids=["norm", "add_norm"])
@pytest.mark.parametrize("mode", fused_check.MODES)
def test_rms_norm_quant(mode, with_residual, m, k, dtype):
    """Against float64 (tests/fused_check.py), with two padding rows; group
    scales column-major (TMA-aligned) for m = 5."""
    if mode == "group" and k % GROUP_SIZE:
        pytest.skip("group quant needs a hidden size divisible by 128")
    x, weight, residual = fused_check.rms_norm_operands(m, k, dtype, DEVICE, seed=m * 31 + k)
    residual_in = residual.clone()
    out, scale = fused_check.run_rms_norm(triton_ops, mode, x, weight,
                                          residual if with_residual else None, rows=m + 2,
                                          column_major=m == 5)
    fused_check.check_rms_norm_quant(mode, x, weight, fused_check.EPS, out, scale,
                                     residual_in if with_residual else None, residual)


@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "row_stride"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", FUSED_HIDDEN)
@pytest.mark.parametrize("m", FUSED_ROWS)
@pytest.mark.parametrize("mode", fused_check.MODES)
def test_silu_and_mul_quant(mode, m, n, dtype, contiguous):
    if mode == "group" and n % GROUP_SIZE:
        pytest.skip("group quant needs a hidden size divisible by 128")
    x = on_device(strided_activation(m, 2 * n, dtype, contiguous, seed=m * 17 + n))
    out, scale = fused_check.run_silu_and_mul(triton_ops, mode, x, rows=m + 2,
                                              column_major=m == 5)
    fused_check.check_silu_and_mul_quant(mode, x, out, scale)


# ---------------------------------------------------------------- GEMMs

OUT_DTYPES = [torch.bfloat16, torch.float16]
GEMM_M = [1, 5, 16, 33] + gpu_cases(64, 200, 1030)
GEMM_N = [16, 48, 160] + gpu_cases(2112, 4096)
GEMM_K = [32, 128, 256] + gpu_cases(7168)
BLOCK_GEMM_K = [128, 256] + gpu_cases(7168)


def gemm_operands(m: int, n: int, k: int, seed: int):
    """FP8 a [M, K] and b [K, N], b the transpose of a row-major [N, K] weight."""
    a = random_fp8(m, k, DEVICE, seed=seed)
    b = random_fp8(n, k, DEVICE, seed=seed + 1).t()
    return a, b


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=str)
@pytest.mark.parametrize("with_bias", [False, True], ids=["no_bias", "bias"])
@pytest.mark.parametrize("scale_b_mode", ["per_tensor", "per_channel"])
@pytest.mark.parametrize("scale_a_mode", ["per_tensor", "per_token"])
@pytest.mark.parametrize("k", GEMM_K)
@pytest.mark.parametrize("n", GEMM_N)
@pytest.mark.parametrize("m", GEMM_M)
def test_scaled_mm(m, n, k, scale_a_mode, scale_b_mode, with_bias, out_dtype):
    seed = m * 131 + n * 7 + k
    a, b = gemm_operands(m, n, k, seed)
    scale_a = log_uniform((m, 1) if scale_a_mode == "per_token" else (1,), 1e-3, 1e-1,
                          DEVICE, seed + 2)
    scale_b = log_uniform((n,) if scale_b_mode == "per_channel" else (1,), 1e-3, 1e-1,
                          DEVICE, seed + 3)
    bias = (torch.randn(n, generator=torch.Generator().manual_seed(seed + 4)).to(out_dtype)
            .to(DEVICE) if with_bias else None)
    out = poisoned((m, n), out_dtype, DEVICE)
    triton_ops.scaled_mm(out, a, b, scale_a, scale_b, bias)
    check_gemm(out, ref.scaled_mm(a, b, scale_a, scale_b, bias),
               ref.scaled_mm_abs(a, b, scale_a, scale_b), k)


@pytest.mark.parametrize("out_dtype", OUT_DTYPES, ids=str)
@pytest.mark.parametrize("tma_aligned", [False, True], ids=["ld_m", "ld_tma"])
@pytest.mark.parametrize("k", BLOCK_GEMM_K)
@pytest.mark.parametrize("n", GEMM_N)
@pytest.mark.parametrize("m", GEMM_M)
def test_block_scaled_mm(m, n, k, tma_aligned, out_dtype):
    seed = m * 131 + n * 7 + k
    a, b = gemm_operands(m, n, k, seed)
    k_blocks = k // BLOCK_K
    # Column-major 1x128 activation scales, as per_token_group_quant_fp8 makes them.
    ld = tma_aligned_size(m) if tma_aligned else m
    scale_a = torch.empty_strided((m, k_blocks), (1, ld), device=DEVICE)
    scale_a.copy_(log_uniform((m, k_blocks), 1e-3, 1e-1, DEVICE, seed + 2))
    # The transpose of a contiguous [N/128, K/128] weight_scale_inv.
    scale_b = log_uniform((cdiv(n, BLOCK_N), k_blocks), 1e-3, 1e-1, DEVICE, seed + 3).t()
    out = poisoned((m, n), out_dtype, DEVICE)
    triton_ops.block_scaled_mm(out, a, b, scale_a, scale_b)
    check_gemm(out, ref.block_scaled_mm(a, b, scale_a, scale_b),
               ref.block_scaled_mm_abs(a, b, scale_a, scale_b), k)


def test_gemms_with_no_rows():
    a, b = gemm_operands(0, 32, 2 * BLOCK_K, seed=0)
    out = torch.empty(0, 32, dtype=torch.bfloat16, device=DEVICE)
    one = torch.ones(1, device=DEVICE)
    triton_ops.scaled_mm(out, a, b, one, one, None)
    triton_ops.block_scaled_mm(out, a, b, torch.empty(0, 2, device=DEVICE),
                               torch.ones(1, 2, device=DEVICE).t())


def test_gemm_entry_points_check_arguments():
    a, b = gemm_operands(4, 32, 2 * BLOCK_K, seed=0)
    out = torch.empty(4, 32, dtype=torch.bfloat16, device=DEVICE)
    one = torch.ones(1, device=DEVICE)
    with pytest.raises(ValueError, match="scaled_mm: 'b' must be column-major"):
        triton_ops.scaled_mm(out, a, b.contiguous(), one, one, None)
    with pytest.raises(ValueError, match="scaled_mm: 'bias' must be"):
        triton_ops.scaled_mm(out, a, b, one, one, torch.zeros(32, device=DEVICE))
    row_major_scale_a = torch.ones(4, 2, device=DEVICE)
    scale_b = torch.ones(1, 2, device=DEVICE).t()
    with pytest.raises(ValueError, match="block_scaled_mm: 'scale_a' must be column-major"):
        triton_ops.block_scaled_mm(out, a, b, row_major_scale_a, scale_b)
