# SPDX-License-Identifier: Apache-2.0
"""Bad input matrix: every op, every way its arguments can be wrong. Each
case must fail with an error that names the argument, on every backend (the
CPU ops run vllm/custom_fp8/_checks.py, the CUDA ops checks.h, same wording),
and leave the caller's output untouched. Documented results (M = 0, inf and
NaN inputs) are tested in test_quant.py / test_scaled_mm.py.
"""

import pytest
import torch

import vllm.custom_fp8 as cf8

from conftest import DEVICES, FP8, activation, log_uniform, random_fp8

ops = torch.ops._custom_fp8
BF16 = torch.bfloat16
ERRORS = (ValueError, RuntimeError)


def good_args(op: str, device: str) -> list:
    """Valid arguments of each op: M=5, K=256, N=48 (block: N=256)."""
    x = activation(5, 256, BF16, device, seed=1)
    f32 = lambda *shape: torch.ones(shape, dtype=torch.float32, device=device)  # noqa: E731
    q = torch.zeros(5, 256, dtype=FP8, device=device)
    if op == "static_scaled_fp8_quant":
        return [q, x, f32(1)]
    if op == "dynamic_scaled_fp8_quant":
        return [q, x, f32(1)]
    if op == "dynamic_per_token_scaled_fp8_quant":
        return [q, x, f32(5, 1), f32(1)]
    if op == "per_token_group_fp8_quant":
        return [q, x, f32(5, 2), 128]
    if op.startswith("rms_norm"):
        weight = torch.ones(256, dtype=BF16, device=device)
        residual = activation(5, 256, BF16, device, seed=5)
        extra = {"rms_norm_static_fp8_quant": [f32(1), 1e-6],
                 "rms_norm_dynamic_per_token_fp8_quant": [f32(5, 1), 1e-6, f32(1)],
                 "rms_norm_per_token_group_fp8_quant": [f32(5, 2), 1e-6, 128]}[op]
        return [q, x, weight, *extra, residual]
    if op.startswith("silu_and_mul"):
        gate_up = activation(5, 512, BF16, device, seed=6)
        extra = {"silu_and_mul_static_fp8_quant": [f32(1)],
                 "silu_and_mul_dynamic_per_token_fp8_quant": [f32(5, 1), f32(1)],
                 "silu_and_mul_per_token_group_fp8_quant": [f32(5, 2), 128]}[op]
        return [q, gate_up, *extra]
    a = random_fp8(5, 256, device, seed=2)
    out = torch.zeros(5, 48 if op == "scaled_mm" else 256, dtype=BF16, device=device)
    if op == "scaled_mm":
        return [out, a, random_fp8(48, 256, device, seed=3).t(), f32(5, 1), f32(48),
                torch.zeros(48, dtype=BF16, device=device)]
    sa = torch.ones(2, 5, dtype=torch.float32, device=device).t()  # column-major [5, 2]
    sb = log_uniform((2, 2), 1e-3, 1e-2, device).t()  # [K/128, N/128], weight_scale_inv^T
    return [out, a, random_fp8(256, 256, device, seed=4).t(), sa, sb]


def replace(op: str, device: str, index: int, value) -> list:
    args = good_args(op, device)
    args[index] = value(args) if callable(value) else value
    return args


QUANT_OPS = ["static_scaled_fp8_quant", "dynamic_scaled_fp8_quant",
             "dynamic_per_token_scaled_fp8_quant", "per_token_group_fp8_quant"]
RMS_NORM_OPS = ["rms_norm_static_fp8_quant", "rms_norm_dynamic_per_token_fp8_quant",
                "rms_norm_per_token_group_fp8_quant"]
SILU_OPS = ["silu_and_mul_static_fp8_quant", "silu_and_mul_dynamic_per_token_fp8_quant",
            "silu_and_mul_per_token_group_fp8_quant"]
FUSED_OPS = RMS_NORM_OPS + SILU_OPS
GEMM_OPS = ["scaled_mm", "block_scaled_mm"]

# (ops, argument index, wrong value (or a function of the good args), the
# argument the error must name)
CASES = [
    # quant: input
    (QUANT_OPS, 1, lambda a: a[1].to(torch.int32), "input"),
    (QUANT_OPS, 1, lambda a: a[1].reshape(5, 2, 128), "input"),
    (QUANT_OPS, 1, lambda a: a[1].t().contiguous().t(), "input"),  # column-major
    (QUANT_OPS, 1, lambda a: a[1][:, :0], "input"),  # hidden size 0
    # quant: out
    (QUANT_OPS, 0, lambda a: a[0].to(BF16), "out"),
    (QUANT_OPS, 0, lambda a: a[0][:4], "out"),  # fewer rows than input
    (QUANT_OPS, 0, lambda a: a[0][:, :128], "out"),
    (QUANT_OPS, 0, lambda a: torch.zeros(512, 5, dtype=FP8, device=a[0].device).t(), "out"),
    # quant: scales
    (["static_scaled_fp8_quant", "dynamic_scaled_fp8_quant"], 2, lambda a: a[2].to(torch.float16),
     "scale"),
    (["static_scaled_fp8_quant", "dynamic_scaled_fp8_quant"], 2,
     lambda a: torch.ones(2, dtype=torch.float32, device=a[2].device), "scale"),
    (["dynamic_per_token_scaled_fp8_quant"], 2, lambda a: a[2][:4], "scale"),
    (["dynamic_per_token_scaled_fp8_quant"], 2, lambda a: a[2].to(torch.float64), "scale"),
    (["dynamic_per_token_scaled_fp8_quant"], 3,
     lambda a: torch.ones(2, dtype=torch.float32, device=a[3].device), "scale_ub"),
    (["per_token_group_fp8_quant"], 3, 64, "group_size"),
    (["per_token_group_fp8_quant"], 2, lambda a: a[2][:, :1], "scale"),
    (["per_token_group_fp8_quant"], 2,
     lambda a: torch.ones(2, 10, dtype=torch.float32, device=a[2].device)[:, ::2].t(), "scale"),
    # fused: input
    (FUSED_OPS, 1, lambda a: a[1].to(torch.int32), "input"),
    (FUSED_OPS, 1, lambda a: a[1].unsqueeze(0), "input"),
    (FUSED_OPS, 1, lambda a: a[1].t().contiguous().t(), "input"),  # column-major
    (FUSED_OPS, 1, lambda a: a[1][:, :0], "input"),  # hidden size 0
    (SILU_OPS, 1, lambda a: a[1][:, :511], "input"),  # no even split into gate and up
    # fused: out
    (FUSED_OPS, 0, lambda a: a[0].to(BF16), "out"),
    (FUSED_OPS, 0, lambda a: a[0][:4], "out"),  # fewer rows than input
    (RMS_NORM_OPS, 0, lambda a: a[0][:, :128], "out"),
    (SILU_OPS, 0, lambda a: torch.zeros(5, 512, dtype=FP8, device=a[0].device), "out"),  # not N
    # rms_norm: weight and residual
    (RMS_NORM_OPS, 2, lambda a: a[2].float(), "weight"),
    (RMS_NORM_OPS, 2, lambda a: a[2][:128], "weight"),
    (RMS_NORM_OPS, 2, lambda a: a[2].view(1, 256), "weight"),
    (RMS_NORM_OPS, 2, lambda a: torch.ones(512, dtype=BF16, device=a[2].device)[::2], "weight"),
    (["rms_norm_static_fp8_quant"], 5, lambda a: a[5].half(), "residual"),
    (["rms_norm_static_fp8_quant"], 5, lambda a: a[5][:4], "residual"),
    (RMS_NORM_OPS[1:], 6, lambda a: a[6].half(), "residual"),
    (RMS_NORM_OPS[1:], 6, lambda a: a[6][:4], "residual"),
    (RMS_NORM_OPS[1:], 6, lambda a: a[6].t().contiguous().t(), "residual"),
    # fused: scales
    (["rms_norm_static_fp8_quant"], 3, lambda a: a[3].to(torch.float16), "scale"),
    (["rms_norm_static_fp8_quant"], 3,
     lambda a: torch.ones(2, dtype=torch.float32, device=a[3].device), "scale"),
    (["silu_and_mul_static_fp8_quant"], 2, lambda a: a[2].to(torch.float16), "scale"),
    (["rms_norm_dynamic_per_token_fp8_quant"], 3, lambda a: a[3][:4], "scale"),
    (["silu_and_mul_dynamic_per_token_fp8_quant"], 2, lambda a: a[2][:4], "scale"),
    (["rms_norm_dynamic_per_token_fp8_quant"], 5, lambda a: a[5].to(torch.float16), "scale_ub"),
    (["silu_and_mul_dynamic_per_token_fp8_quant"], 3,
     lambda a: torch.ones(2, dtype=torch.float32, device=a[3].device), "scale_ub"),
    (["rms_norm_per_token_group_fp8_quant"], 5, 64, "group_size"),
    (["silu_and_mul_per_token_group_fp8_quant"], 3, 64, "group_size"),
    (["rms_norm_per_token_group_fp8_quant"], 3, lambda a: a[3][:, :1], "scale"),
    (["silu_and_mul_per_token_group_fp8_quant"], 2,
     lambda a: torch.ones(2, 10, dtype=torch.float32, device=a[2].device)[:, ::2].t(), "scale"),
    # GEMMs: operands
    (GEMM_OPS, 1, lambda a: a[1].to(BF16), "a"),
    (GEMM_OPS, 1, lambda a: a[1].view(torch.uint8).view(5, 2, 128).view(FP8), "a"),
    (GEMM_OPS, 2, lambda a: a[2].t().contiguous(), "b"),  # row-major [K, N]
    (GEMM_OPS, 2, lambda a: a[2][:128], "b"),  # K mismatch
    (["scaled_mm"], 2, lambda a: random_fp8(40, 256, a[2].device).t(), "b"),  # N % 16
    (GEMM_OPS, 1, lambda a: random_fp8(5, 264, a[1].device), "b"),  # K mismatch with b
    # GEMMs: out
    (GEMM_OPS, 0, lambda a: a[0].float(), "out"),
    (GEMM_OPS, 0, lambda a: a[0][:4], "out"),
    (GEMM_OPS, 0, lambda a: torch.zeros(a[0].shape[1], 5, dtype=BF16, device=a[0].device).t(),
     "out"),
    # GEMMs: scales and bias
    (GEMM_OPS, 3, lambda a: a[3].to(torch.float16), "scale_a"),
    (["scaled_mm"], 3, lambda a: a[3][:4], "scale_a"),
    (["scaled_mm"], 3, lambda a: torch.ones(5, 2, dtype=torch.float32, device=a[3].device),
     "scale_a"),
    (["scaled_mm"], 4, lambda a: a[4][:47], "scale_b"),
    (["scaled_mm"], 4, lambda a: torch.ones(96, dtype=torch.float32, device=a[4].device)[::2],
     "scale_b"),
    (["scaled_mm"], 5, lambda a: a[5].float(), "bias"),
    (["scaled_mm"], 5, lambda a: a[5][:16], "bias"),
    (["block_scaled_mm"], 3, lambda a: a[3].contiguous(), "scale_a"),  # row-major
    (["block_scaled_mm"], 3, lambda a: a[3][:4], "scale_a"),
    (["block_scaled_mm"], 4, lambda a: a[4].contiguous(), "scale_b"),  # not weight_scale_inv^T
    (["block_scaled_mm"], 4, lambda a: a[4][:1], "scale_b"),
]


def case_ids():
    for ops_, index, _, arg in CASES:
        for op in ops_:
            yield pytest.param(op, index, _, arg, id=f"{op}-{arg}-{index}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,index,value,arg", list(case_ids()))
def test_bad_argument_is_named(device, op, index, value, arg):
    args = replace(op, device, index, value)
    outputs = [t.clone() for t in args if isinstance(t, torch.Tensor)]
    with pytest.raises(ERRORS, match=f"'{arg}'"):
        getattr(ops, op)(*args)
    # nothing half-written: a rejected call leaves every tensor as it was
    after = [t for t in args if isinstance(t, torch.Tensor)]
    for before, now in zip(outputs, after):
        assert torch.equal(before.view(torch.uint8) if before.dtype == FP8 else before,
                           now.view(torch.uint8) if now.dtype == FP8 else now)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["rms_norm_per_token_group_fp8_quant",
                                "silu_and_mul_per_token_group_fp8_quant"])
def test_group_hidden_size_is_named(device, op):
    """A hidden size (per half, for silu_and_mul) that 128-groups do not divide."""
    args = good_args(op, device)
    k = 200
    args[0] = torch.zeros(5, k, dtype=FP8, device=device)
    if op.startswith("rms_norm"):
        args[1], args[2], args[-1] = args[1][:, :k], args[2][:k], args[-1][:, :k].contiguous()
    else:
        args[1] = activation(5, 2 * k, BF16, device, seed=7)
    with pytest.raises(ERRORS, match="'input'"):
        getattr(ops, op)(*args)


@pytest.mark.parametrize("op", QUANT_OPS + FUSED_OPS + GEMM_OPS)
def test_tensors_on_different_devices(op):
    """A CPU tensor among CUDA ones (or the reverse) names the odd argument."""
    if not torch.cuda.is_available():
        pytest.skip("needs a GPU")
    args = good_args(op, "cuda")
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and i > 0:
            bad = list(args)
            bad[i] = a.cpu()
            with pytest.raises(ERRORS):
                getattr(ops, op)(*bad)


def test_functional_api_names_out_dtype():
    a = random_fp8(4, 64)
    b = random_fp8(32, 64).t()
    with pytest.raises(ValueError, match="'out_dtype'"):
        cf8.scaled_mm(a, b, torch.ones(1), torch.ones(1), torch.float32)
    with pytest.raises(ValueError, match="'scale_ub'"):
        cf8.scaled_fp8_quant(activation(4, 64), scale_ub=torch.ones(1))


@pytest.mark.parametrize("device", DEVICES)
def test_out_of_range_config(device):
    args = good_args("scaled_mm", device)
    if device == "cuda":
        for config in (10_000, -3):
            with pytest.raises(ERRORS, match="'config'"):
                ops.scaled_mm(*args, config)
        block_args = good_args("block_scaled_mm", device)
        for config in (10_000, -2):
            with pytest.raises(ERRORS, match="'config'"):
                ops.block_scaled_mm(*block_args, config)


def test_library_without_build_info(tmp_path):
    """A library file that carries no build record (not built by our
    CMakeLists.txt) is named in the error, not parsed into garbage."""
    from vllm.custom_fp8._library import read_build_info

    fake = tmp_path / "_C.abi3.so"
    fake.write_bytes(b"\x7fELF not our library")
    with pytest.raises(RuntimeError, match="_C.abi3.so carries no build info"):
        read_build_info(fake)
