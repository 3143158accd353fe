# SPDX-License-Identifier: Apache-2.0
"""Memory safety without a sanitizer (guard regions around every output),
torch.compile(fullgraph=True), CUDA-graph capture and replay with changing
inputs, run-to-run determinism of every op and configuration, and the
ordering of each GEMM after its producer under PDL."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vllm.custom_fp8 as cf8
from vllm.custom_fp8._library import (block_scaled_mm_configs, scaled_mm_configs, splitk_config,
                                      wave_configs)
from vllm.custom_fp8.linear import ActivationScheme, fp8_linear

from conftest import DEVICES, FP8, HAS_CUDA_KERNELS, activation, log_uniform, random_fp8

ops = torch.ops._custom_fp8
GUARD = 4096  # bytes of poison on each side of an output
POISON = 0xA5


def guarded(shape, dtype, device, strides=None):
    """(view, backing buffer): the view sits GUARD bytes into a poisoned buffer."""
    elem = torch.empty((), dtype=dtype).element_size()
    numel = 1 + sum((s - 1) * st for s, st in zip(shape, strides)) if strides else \
        int(torch.tensor(shape).prod())
    buf = torch.full((2 * GUARD + numel * elem,), POISON, dtype=torch.uint8, device=device)
    view = buf[GUARD:GUARD + numel * elem].view(dtype)
    view = view.as_strided(shape, strides) if strides else view.view(shape)
    return view, buf, numel * elem


def assert_guards_intact(buf, nbytes):
    assert bool((buf[:GUARD] == POISON).all()), "write before the output"
    assert bool((buf[GUARD + nbytes:] == POISON).all()), "write past the output"


def op_calls(device, m, k, n):
    """Every op on guarded outputs: (name, call(outputs), [(shape, dtype, strides)])."""
    x = activation(m, k, torch.bfloat16, device, seed=m + k)
    a = random_fp8(m, k, device, seed=1)
    b = random_fp8(n, k, device, seed=2).t()
    sa, sb = log_uniform((m, 1), 1e-3, 1e-1, device), log_uniform((n,), 1e-3, 1e-1, device)
    ga, gsa = cf8.per_token_group_quant_fp8(x, column_major_scales=True)
    gsb = log_uniform(((n + 127) // 128, k // 128), 1e-4, 1e-2, device).t()
    f32 = torch.float32
    return [
        ("static", lambda o: ops.static_scaled_fp8_quant(o[0], x, sa[:1].reshape(1)),
         [((m + 3, k), FP8, None)]),
        ("dynamic", lambda o: ops.dynamic_scaled_fp8_quant(o[0], x, o[1]),
         [((m, k), FP8, None), ((1,), f32, None)]),
        ("per_token", lambda o: ops.dynamic_per_token_scaled_fp8_quant(o[0], x, o[1], None),
         [((m + 3, k), FP8, None), ((m + 3, 1), f32, None)]),
        ("group", lambda o: ops.per_token_group_fp8_quant(o[0], x, o[1], 128),
         [((m, k), FP8, None), ((m, k // 128), f32, (1, (m + 3) // 4 * 4))]),
        ("scaled_mm", lambda o: ops.scaled_mm(o[0], a, b, sa, sb, None),
         [((m, n), torch.bfloat16, None)]),
        ("block_scaled_mm", lambda o: ops.block_scaled_mm(o[0], ga, b, gsa, gsb),
         [((m, n), torch.bfloat16, None)]),
    ] + ([("scaled_mm_splitk",  # M > 64: groups of 64 tokens
           lambda o: ops.scaled_mm(o[0], a, b, sa, sb, None, splitk_config(min(m, 64))),
           [((m, n), torch.bfloat16, None)])]
         if device == "cuda" and cf8.CUDA_BACKEND == "cuda" and splitk_config(1) is not None
         else []) + ([("scaled_mm_wave", lambda o: ops.scaled_mm(o[0], a, b, sa, sb, None,
                                                               wave_configs()[0]),
                       [((m, n), torch.bfloat16, None)])]
                     if device == "cuda" and cf8.CUDA_BACKEND == "cuda" and wave_configs()
                     else []) + ([("block_scaled_mm_wave",
                                   lambda o: ops.block_scaled_mm(o[0], ga, b, gsa, gsb,
                                                                 wave_configs(True)[0]),
                                   [((m, n), torch.bfloat16, None)])]
                                 if device == "cuda" and cf8.CUDA_BACKEND == "cuda"
                                 and wave_configs(True) else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("m,k,n", [(1, 128, 16), (7, 384, 144), (130, 512, 272)])
def test_guard_regions(device, m, k, n):
    for name, call, outs in op_calls(device, m, k, n):
        made = [guarded(shape, dtype, device, strides) for shape, dtype, strides in outs]
        call([view for view, _, _ in made])
        for _, buf, nbytes in made:
            assert_guards_intact(buf, nbytes)


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic(device):
    """Same inputs, bit-identical outputs, for every op; on the GPU for every
    scaled_mm configuration (stream-K included)."""
    for name, call, outs in op_calls(device, 70, 512, 4096):
        results = []
        for _ in range(3):
            made = [torch.zeros(shape, dtype=dtype, device=device) if strides is None else
                    torch.zeros(shape, dtype=dtype, device=device).t().contiguous().t()
                    for shape, dtype, strides in outs]
            call(made)
            results.append([t.view(torch.uint8) if t.dtype == FP8 else t for t in made])
        for other in results[1:]:
            assert all(torch.equal(u, v) for u, v in zip(results[0], other)), name
    if device == "cuda":
        a, b = random_fp8(70, 4096, device, 5), random_fp8(4096, 4096, device, 6).t()
        sa, sb = log_uniform((70, 1), 1e-3, 1e-1, device), log_uniform((4096,), 1e-3, 1e-1, device)
        configs = scaled_mm_configs()
        assert configs, "the library lists no scaled_mm configurations"
        for config, name in enumerate(configs):
            runs = [cf8.scaled_mm(a, b, sa, sb, torch.bfloat16, config=config) for _ in range(3)]
            assert torch.equal(runs[0], runs[1]) and torch.equal(runs[0], runs[2]), name


class FP8Linear(torch.nn.Module):
    def __init__(self, n, k, scheme, device):
        super().__init__()
        self.scheme = scheme
        if scheme is ActivationScheme.DYNAMIC_GROUP:
            self.weight = random_fp8(n, k, device, 7).t()
            self.scale = log_uniform((n // 128, k // 128), 1e-4, 1e-2, device).t()
        else:
            self.weight = random_fp8(n, k, device, 7).t()
            self.scale = log_uniform((n,), 1e-3, 1e-1, device)
        self.input_scale = torch.tensor([0.02], device=device)

    def forward(self, x):
        return fp8_linear(x, self.weight, self.scale, self.scheme, torch.bfloat16,
                          input_scale=self.input_scale)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scheme", list(ActivationScheme))
def test_torch_compile_fullgraph(device, scheme):
    """Our ops trace through Dynamo and Inductor without a graph break (their
    fake impls), with dynamic M, and give the eager results."""
    torch._dynamo.reset()
    layer = FP8Linear(256, 256, scheme, device)
    compiled = torch.compile(layer, fullgraph=True, dynamic=True)
    for m in (3, 17, 64):
        x = activation(m, 256, torch.bfloat16, device, seed=m)
        assert torch.equal(compiled(x), layer(x))


@pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="needs a GPU")
@pytest.mark.parametrize("scheme", list(ActivationScheme))
def test_cuda_graph_replay(scheme):
    """Captured once, replayed on new inputs copied into the static buffer:
    every replay equals the eager result on that input."""
    layer = FP8Linear(512, 512, scheme, "cuda")
    static_x = activation(33, 512, torch.bfloat16, "cuda", seed=0)
    layer(static_x)  # warm up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = layer(static_x)
    for seed in range(1, 4):
        x = activation(33, 512, torch.bfloat16, "cuda", seed=seed)
        static_x.copy_(x)
        graph.replay()
        assert torch.equal(static_y, layer(x))


def _producer_calls(k, device):
    """Producers a GEMM reads from: name -> call(x, q, s), writing codes into
    q [m, k] and per-token scales into s [m, 1]; the static one reads its
    scale from s[0] instead."""
    weight = log_uniform((k,), 0.5, 2.0, device).to(torch.bfloat16)
    return {
        "per_token": lambda x, q, s: ops.dynamic_per_token_scaled_fp8_quant(q, x, s, None),
        "static": lambda x, q, s: ops.static_scaled_fp8_quant(q, x, s[:1].reshape(1)),
        "rms_norm_per_token": lambda x, q, s: ops.rms_norm_dynamic_per_token_fp8_quant(
            q, x, weight, s, 1e-6, None),
        "silu_and_mul_per_token": lambda x, q, s: ops.silu_and_mul_dynamic_per_token_fp8_quant(
            q, torch.cat([x, x.flip(1)], dim=1), s, None),
    }


@pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="needs a GPU")
@pytest.mark.parametrize("producer", ["per_token", "static", "rms_norm_per_token",
                                      "silu_and_mul_per_token"])
@pytest.mark.parametrize("m", [1, 16, 64, 200, 4096])
@pytest.mark.parametrize("gemm", ["dispatch", "splitk", "wave", "wave_cluster2"])
def test_gemm_waits_for_its_producer(producer, m, gemm):
    """PDL: each GEMM may start while the producer before it still runs, and
    must wait for it before reading. A chain of layers that reuse one code and
    scale buffer, captured in one CUDA graph (decode, stream-K and tile
    configurations by M, and the split-K decode kernel, which loads weight
    tiles before its wait): a GEMM that read early would see the previous
    layer's codes. Every output equals the same layer run with the GPU idle
    between producer and GEMM. The wave GEMM's producer thread waits before
    its first load, alone and in a cluster of two."""
    if gemm == "splitk" and m > 64:
        pytest.skip("the split-K kernel serves decode")
    config = (-1 if gemm == "dispatch" else splitk_config(m) if gemm == "splitk"
              else _wave_config(False, gemm))
    k, n, layers = 4096, 2048, 6
    w = random_fp8(n, k, "cuda", seed=3).t()
    sw = log_uniform((n,), 1e-3, 1e-1, "cuda")
    produce = _producer_calls(k, "cuda")[producer]
    xs = [activation(m, k, torch.bfloat16, "cuda", seed=10 + i) * (i + 1) for i in range(layers)]
    q = torch.empty(m, k, dtype=FP8, device="cuda")
    s = torch.full((m, 1), 0.01 if producer == "static" else 0.0, device="cuda")
    scale_a = s[:1] if producer == "static" else s  # what the GEMM reads
    assert_layer_chain_ordered(xs, (m, n), lambda x: produce(x, q, s),
                               lambda y: ops.scaled_mm(y, q, w, scale_a, sw, None, config))


def _wave_config(block_scaled, kind):
    """The first wave configuration's id, of a cluster of two CTAs where kind
    is wave_cluster2."""
    names = block_scaled_mm_configs() if block_scaled else scaled_mm_configs()
    return next(i for i in wave_configs(block_scaled)
                if names[i].endswith("_cluster2") == (kind == "wave_cluster2"))


def assert_layer_chain_ordered(xs, out_shape, produce, gemm):
    """Layers produce(x) then gemm(y), one per x, captured in one CUDA graph
    and replayed: every y equals the same layer run with the GPU idle between
    its producer and its GEMM."""
    expected = []
    for x in xs:
        produce(x)
        torch.cuda.synchronize()
        expected.append(torch.empty(out_shape, dtype=torch.bfloat16, device="cuda"))
        gemm(expected[-1])
    ys = [torch.empty_like(e) for e in expected]

    def chain():
        for x, y in zip(xs, ys):
            produce(x)
            gemm(y)

    chain()  # warm up outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        chain()
    for y in ys:
        y.fill_(float("nan"))
    for _ in range(3):
        graph.replay()
        torch.cuda.synchronize()
        for i, (y, e) in enumerate(zip(ys, expected)):
            assert torch.equal(y, e), f"layer {i} differs: its GEMM read before its producer finished"


@pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="needs a GPU")
@pytest.mark.parametrize("m", [1, 200, 4096])
@pytest.mark.parametrize("gemm", ["dispatch", "wave", "wave_cluster2"])
def test_block_gemm_waits_for_its_producer(m, gemm):
    """The same PDL ordering for the block-scaled GEMM after the group quant:
    the wave GEMM's second producer warp copies the group scales, after its
    wait."""
    config = -1 if gemm == "dispatch" else _wave_config(True, gemm)
    k, n, layers = 4096, 2048, 6
    w = random_fp8(n, k, "cuda", seed=3).t()
    sw = log_uniform((n // 128, k // 128), 1e-3, 1e-1, "cuda").t()  # weight_scale_inv.t()
    xs = [activation(m, k, torch.bfloat16, "cuda", seed=10 + i) * (i + 1) for i in range(layers)]
    q = torch.empty(m, k, dtype=FP8, device="cuda")
    s = torch.zeros(k // 128, (m + 3) // 4 * 4, device="cuda")[:, :m].t()  # column-major

    assert_layer_chain_ordered(xs, (m, n), lambda x: ops.per_token_group_fp8_quant(q, x, s, 128),
                               lambda y: ops.block_scaled_mm(y, q, w, s, sw, config))


@pytest.mark.skipif(not HAS_CUDA_KERNELS, reason="needs a GPU")
def test_pdl_switch_keeps_results():
    """VLLM_CUSTOM_FP8_PDL=0 launches the GEMMs without PDL: same bits."""
    code = (
        "import torch, hashlib, vllm.custom_fp8\n"
        "from conftest import activation, log_uniform, random_fp8\n"
        "ops = torch.ops._custom_fp8\n"
        "h = hashlib.sha256()\n"
        "for m in (1, 64, 4096):\n"
        "    x = activation(m, 4096, torch.bfloat16, 'cuda', seed=m)\n"
        "    q = torch.empty(m, 4096, dtype=torch.float8_e4m3fn, device='cuda')\n"
        "    s = torch.empty(m, 1, device='cuda')\n"
        "    y = torch.empty(m, 2048, dtype=torch.bfloat16, device='cuda')\n"
        "    ops.dynamic_per_token_scaled_fp8_quant(q, x, s, None)\n"
        "    ops.scaled_mm(y, q, random_fp8(2048, 4096, 'cuda', seed=3).t(), s,\n"
        "                  log_uniform((2048,), 1e-3, 1e-1, 'cuda'), None)\n"
        "    h.update(y.view(torch.int16).cpu().numpy().tobytes())\n"
        "print(h.hexdigest())\n")
    tests = Path(__file__).parent
    digests = {}
    for flag in ("0", "1"):
        env = dict(os.environ, VLLM_CUSTOM_FP8_PDL=flag,
                   PYTHONPATH=os.pathsep.join([str(tests), str(tests.parent),
                                               os.environ.get("PYTHONPATH", "")]))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        digests[flag] = out.stdout.split()[-1]
    assert digests["0"] == digests["1"]
