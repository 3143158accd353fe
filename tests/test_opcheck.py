# SPDX-License-Identifier: Apache-2.0
"""torch.library.opcheck on every op and backend: the schemas declare exactly
what each op mutates, the fake impls agree with the real ones, and the ops
trace through AOT dispatch (what torch.compile and CUDA graphs rely on)."""

import pytest
import torch

import vllm.custom_fp8 as cf8

from conftest import DEVICES, FP8, activation, log_uniform, poisoned, random_fp8

ops = torch.ops._custom_fp8


def op_cases(device):
    x = activation(5, 256, torch.bfloat16, device, seed=1)
    weight = activation(1, 256, torch.bfloat16, device, seed=4).view(256)
    residual = lambda: activation(5, 256, torch.bfloat16, device, seed=5)  # noqa: E731
    gate_up = activation(5, 512, torch.bfloat16, device, seed=6)
    q = lambda rows=5: poisoned((rows, 256), FP8, device)  # noqa: E731
    f32 = lambda *s: poisoned(s, torch.float32, device)  # noqa: E731
    a = random_fp8(5, 256, device, seed=2)
    b = random_fp8(48, 256, device, seed=3).t()
    out = poisoned((5, 48), torch.bfloat16, device)
    ga, gsa = cf8.per_token_group_quant_fp8(x, column_major_scales=True)
    gscale_b = log_uniform((1, 2), 1e-3, 1e-2, device).t()
    return {
        "static_scaled_fp8_quant": (q(8), x, torch.tensor([0.02], device=device)),
        "dynamic_scaled_fp8_quant": (q(), x, f32(1)),
        "dynamic_per_token_scaled_fp8_quant": (q(8), x, f32(8, 1), torch.tensor([0.1], device=device)),
        "per_token_group_fp8_quant": (q(), x, f32(5, 2), 128),
        "rms_norm_static_fp8_quant": (q(8), x, weight, torch.tensor([0.02], device=device),
                                      1e-6, residual()),
        "rms_norm_dynamic_per_token_fp8_quant": (q(), x, weight, f32(5, 1), 1e-6,
                                                 torch.tensor([0.1], device=device), residual()),
        "rms_norm_per_token_group_fp8_quant": (q(), x, weight, f32(5, 2), 1e-6, 128,
                                               residual()),
        "silu_and_mul_static_fp8_quant": (q(8), gate_up, torch.tensor([0.02], device=device)),
        "silu_and_mul_dynamic_per_token_fp8_quant": (q(), gate_up, f32(5, 1), None),
        "silu_and_mul_per_token_group_fp8_quant": (q(), gate_up, f32(5, 2), 128),
        "scaled_mm": (out, a, b, log_uniform((5, 1), 1e-3, 1e-1, device),
                      log_uniform((48,), 1e-3, 1e-1, device),
                      torch.randn(48, device=device).to(torch.bfloat16)),
        "block_scaled_mm": (out.clone(), ga, b, gsa, gscale_b),
    }


# opcheck's test_schema compares tensors with allclose, which torch does not
# implement for float8 (every op here has float8 arguments), so the schema is
# checked by test_only_declared_arguments_mutate below instead.
OPCHECK_UTILS = ("test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(op_cases("cpu")))
def test_opcheck(device, name):
    torch.library.opcheck(getattr(ops, name), op_cases(device)[name], test_utils=OPCHECK_UTILS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(op_cases("cpu")))
def test_only_declared_arguments_mutate(device, name):
    """Exactly the arguments the schema marks mutable (Tensor(a!)) change."""
    op = getattr(ops, name).default
    args = op_cases(device)[name]
    before = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    op(*args)
    for schema_arg, old, new in zip(op._schema.arguments, before, args):
        if not isinstance(new, torch.Tensor):
            continue
        changed = not torch.equal(old.view(torch.uint8), new.view(torch.uint8)) \
            if old.dtype == FP8 else not torch.equal(old.nan_to_num(), new.nan_to_num())
        declared = schema_arg.alias_info is not None and schema_arg.alias_info.is_write
        assert changed == declared, f"{name}: '{schema_arg.name}' changed={changed}, declared mutable={declared}"
