# SPDX-License-Identifier: Apache-2.0
import json
import math
import os
from pathlib import Path

import pytest
import torch

import vllm.custom_fp8 as cf8

REPO = Path(__file__).resolve().parents[1]
SHAPES = json.loads((REPO / "data" / "shapes.json").read_text())

HAS_CUDA_KERNELS = torch.cuda.is_available() and cf8.CUDA_BACKEND is not None
requires_gpu = pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="needs a GPU with custom_fp8 CUDA kernels")
DEVICES = ["cpu", pytest.param("cuda", marks=requires_gpu)]
FP8 = torch.float8_e4m3fn


def model_shapes(tp_sizes=(1, 2)):
    """(name, N, K) of every projection of every model, TP shards included."""
    out = []
    for model, spec in SHAPES["models"].items():
        for proj, s in spec["layers"].items():
            for tp in tp_sizes:
                n = s["n"] // tp if s["split"] == "n" else s["n"]
                k = s["k"] // tp if s["split"] == "k" else s["k"]
                out.append((f"{model}-{proj}-tp{tp}", n, k))
    return out


def _generator(device, seed: int) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def activation(m: int, k: int, dtype=torch.bfloat16, device="cpu", seed: int = 0) -> torch.Tensor:
    """Random activations with per-row magnitudes spread over 4 decades and a
    few outliers, like real hidden states; never all zeros."""
    g = _generator(device, seed)
    x = torch.randn(m, k, generator=g, device=device)
    x *= torch.exp(torch.empty(m, 1, device=device).uniform_(-4, 4, generator=g))
    outliers = torch.rand(m, k, generator=g, device=device) < 0.002
    x[outliers] *= 50
    return x.to(dtype)


def log_uniform(shape, lo: float, hi: float, device="cpu", seed: int = 0) -> torch.Tensor:
    u = torch.empty(shape, device=device).uniform_(math.log(lo), math.log(hi),
                                                   generator=_generator(device, seed))
    return u.exp()


def random_fp8(rows: int, cols: int, device="cpu", seed: int = 0) -> torch.Tensor:
    """Random e4m3 codes spread over the whole finite range (no NaN codes)."""
    g = _generator(device, seed)
    x = torch.randn(rows, cols, generator=g, device=device)
    x *= torch.exp(torch.empty(rows, cols, device=device).uniform_(-3, 3, generator=g))
    return x.clamp(-448, 448).to(FP8)


def without_k_block(a: torch.Tensor, block: int = 1, size: int = 128) -> torch.Tensor:
    """a copy of FP8 `a` [M, K] with one 128-column block of K zeroed."""
    out = a.clone()
    out.view(torch.uint8)[:, block * size:(block + 1) * size] = 0
    return out


def poisoned(shape, dtype, device, strides=None) -> torch.Tensor:
    """An output buffer whose every element would fail a check if left unwritten."""
    t = torch.empty(shape, dtype=dtype, device=device) if strides is None else \
        torch.empty_strided(shape, strides, dtype=dtype, device=device)
    if dtype == FP8:
        t.view(torch.uint8).fill_(0x7F)  # the e4m3fn NaN code
    else:
        t.fill_(float("nan"))
    return t


def pytest_report_header(config):
    return (f"custom_fp8 CUDA backend: {cf8.CUDA_BACKEND}; cuda available: {torch.cuda.is_available()}"
            f"; torch {torch.__version__}")


@pytest.fixture(autouse=True)
def _deterministic_seed():
    torch.manual_seed(0)


def on_gpu_run() -> bool:
    """Large shapes only where the kernels run on a GPU (the CPU suite stays small)."""
    return HAS_CUDA_KERNELS and os.environ.get("CUSTOM_FP8_SMALL_GPU_SUITE") != "1"
