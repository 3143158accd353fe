# SPDX-License-Identifier: Apache-2.0
"""Time one whole FP8 linear layer (bf16 activation -> quant -> FP8 GEMM ->
dequant -> bf16) on the fork's kernels beside upstream vLLM 0.25.1's own
paths, cuBLASLt and bf16, for every Llama-3-8B / Qwen2.5-7B projection.

    python benchmarks/bench_fp8_linear.py --out bench.json          # everything
    python benchmarks/bench_fp8_linear.py --preset quick --out q.json
    python benchmarks/report.py bench.json                          # tables, plots

Method (docs/benchmarks.md): every timed configuration is first validated
against a float64 reference. t_graph: a CUDA graph of back-to-back calls
cycling through operand copies that span >= 4x the 50 MB L2 (cold cache, no
launch gaps); methods of one (shape, M) are replayed interleaved, `repeats`
times; the median is reported with the spread. t_eager: the same calls from
a host loop, launch and Python overhead included. Ceilings (copy and read-stream bandwidth,
FP8 peak) are measured in the same run. Upstream's ops come from its _C
library (--upstream-c, default $VLLM_UPSTREAM_C).
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import triton
import triton.language as tl

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import vllm.custom_fp8 as cf8  # noqa: E402
from vllm.custom_fp8 import triton as cf8_triton  # noqa: E402  (needs triton)
from vllm.custom_fp8._library import (  # noqa: E402
    block_scaled_mm_configs, scaled_mm_configs, splitk_config, wave_configs)
from vllm.custom_fp8.linear import ActivationScheme, fp8_linear  # noqa: E402
from vllm.custom_fp8.cpu import rms_norm_in_dtype, silu_and_mul_in_dtype  # noqa: E402
from vllm.custom_fp8.numerics import rel_error  # noqa: E402

FP8 = torch.float8_e4m3fn
L2_BYTES = 50e6
SPAN_BYTES = 4 * L2_BYTES
GRAPH_TARGET_S = 0.02  # each replay ~20 ms
MIN_CALLS, MAX_CALLS = 4, 400


@dataclass
class Shape:
    model: str
    proj: str
    tp: int
    n: int
    k: int
    bias: bool  # Qwen2's qkv_proj carries a bias


# Models outside data/shapes.json, hence outside the tuned GEMM table: the
# analytic dispatch serves them (--models qwen2.5-14b llama-3-70b).
FALLBACK_MODELS = {
    "qwen2.5-14b": {"qkv_proj": {"n": 7168, "k": 5120, "split": "n"},
                    "o_proj": {"n": 5120, "k": 5120, "split": "k"},
                    "gate_up_proj": {"n": 27648, "k": 5120, "split": "n"},
                    "down_proj": {"n": 5120, "k": 13824, "split": "k"}},
    "llama-3-70b": {"qkv_proj": {"n": 10240, "k": 8192, "split": "n"},
                    "o_proj": {"n": 8192, "k": 8192, "split": "k"},
                    "gate_up_proj": {"n": 57344, "k": 8192, "split": "n"},
                    "down_proj": {"n": 8192, "k": 28672, "split": "k"}},
}


def model_shapes(models, projections, tps):
    spec = json.loads((REPO / "data" / "shapes.json").read_text())
    layers_of = {m: s["layers"] for m, s in spec["models"].items()} | FALLBACK_MODELS
    for model in models:
        for proj, s in layers_of[model].items():
            if proj not in projections:
                continue
            for tp in tps:
                n = s["n"] // tp if s["split"] == "n" else s["n"]
                k = s["k"] // tp if s["split"] == "k" else s["k"]
                yield Shape(model, proj, tp, n, k, bias=model.startswith("qwen") and proj == "qkv_proj")


# ----------------------------------------------------------------- timing

def time_graphs(fns: dict, n_copies: int, repeats: int) -> dict[str, list[float]]:
    """Seconds per call of each fn(i), from CUDA-graph replays interleaved
    across fns (A, B, A, B, ...)."""
    graphs = {}
    for name, fn in fns.items():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(n_copies):
            fn(i)
        torch.cuda.synchronize()
        est = max((time.perf_counter() - t0) / n_copies, 1e-6)
        calls = int(min(MAX_CALLS, max(MIN_CALLS, n_copies, GRAPH_TARGET_S / est)))
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            for j in range(calls):
                fn(j % n_copies)
        g.replay()
        graphs[name] = (g, calls)
    torch.cuda.synchronize()
    times = {name: [] for name in fns}
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    for _ in range(repeats):
        for name, (g, calls) in graphs.items():
            start.record()
            g.replay()
            end.record()
            end.synchronize()
            times[name].append(start.elapsed_time(end) * 1e-3 / calls)
    del graphs
    return times


def time_eager(fn, n_copies: int, calls: int = 50) -> float:
    for i in range(n_copies):
        fn(i)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for j in range(calls):
        fn(j % n_copies)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / calls


@triton.jit
def _read_stream_kernel(src, partial, n_vectors, BLOCK: tl.constexpr):
    """Reads src (int32, n_vectors a multiple of BLOCK) in grid-strided
    BLOCK-wide slabs (16-byte loads per thread); one xor per program is
    written, so the bytes moved are reads."""
    acc = tl.zeros([BLOCK], dtype=tl.int32)
    for start in range(tl.program_id(0) * BLOCK, n_vectors, tl.num_programs(0) * BLOCK):
        acc ^= tl.load(src + start + tl.arange(0, BLOCK))
    tl.store(partial + tl.program_id(0), tl.xor_sum(acc, axis=0))


def time_events(fn, calls: int = 5) -> float:
    """Seconds per call of back-to-back launches between two events (the
    other timing of a ceiling; a CUDA graph can time a stream lower)."""
    fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(calls):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) * 1e-3 / calls


def ceilings() -> dict:
    """Measured in every run: the device copy's bandwidth (bytes read +
    written), a pure read stream's (the weight stream of a memory-bound
    layer), each of >= 1 GiB on every SM timed in a CUDA graph and with
    events (the faster counts), and the FP8 peak (cuBLASLt fast-accum 8192^3)."""
    n = 1 << 31  # bytes; copied as float32 so the copy kernel moves 16 bytes per thread
    src = torch.empty(n // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    copy = lambda i=0: dst.copy_(src)  # noqa: E731
    t_copy = min(statistics.median(time_graphs({"copy": copy}, 1, 5)["copy"]), time_events(copy))
    words = src.view(torch.int32)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    partial = torch.empty(16 * sms, dtype=torch.int32, device="cuda")
    t_read = math.inf
    for per_sm, block, warps in ((2, 4096, 8), (4, 4096, 8), (8, 2048, 4), (16, 1024, 4)):
        read = lambda i=0, g=per_sm * sms, b=block, w=warps: _read_stream_kernel[(g,)](  # noqa: E731
            words, partial, words.numel(), BLOCK=b, num_warps=w)
        t_read = min(t_read, statistics.median(time_graphs({"read": read}, 1, 5)["read"]),
                     time_events(read))
    a = torch.randn(8192, 8192, device="cuda").to(FP8)
    b = torch.randn(8192, 8192, device="cuda").to(FP8).t()
    one = torch.ones((), device="cuda")
    mm = lambda i: torch._scaled_mm(a, b, one, one, out_dtype=torch.bfloat16,  # noqa: E731
                                    use_fast_accum=True)
    t_mm = statistics.median(time_graphs({"mm": mm}, 1, 5)["mm"])
    return {"copy_bw_Bps": 2 * n / t_copy, "read_bw_Bps": n / t_read,
            "fp8_peak_flops": 2 * 8192**3 / t_mm}


# ----------------------------------------------------------------- methods

def native_quant_math(x, per_token: bool):
    """Upstream's QuantFP8.forward_native math (what vLLM's default compile
    mode hands to Inductor): amax, scale clamp, multiply by the reciprocal."""
    amax = x.abs().amax(dim=-1, keepdim=True) if per_token else x.abs().amax().reshape(1, 1)
    scale = (amax.float() / 448.0).clamp(min=1.0 / (448.0 * 512.0))
    return (x.float() * scale.reciprocal()).clamp(-448.0, 448.0).to(FP8), scale


def native_quant(per_token: bool):
    return torch.compile(lambda x: native_quant_math(x, per_token), dynamic=True)


class Operands:
    """Copies of one shape's operands, enough to span SPAN_BYTES."""

    def __init__(self, shape: Shape, m: int, weights: dict):
        self.shape, self.w, self.producer, self.block_codes = shape, weights, None, None
        x_bytes = 2 * m * shape.k
        self.n_copies = max(1, min(weights["copies"], math.ceil(
            SPAN_BYTES / (x_bytes + shape.n * shape.k + 2 * m * shape.n))))
        g = torch.Generator(device="cuda").manual_seed(m)
        self.x = []
        for _ in range(self.n_copies):
            x = torch.randn(m, shape.k, device="cuda", generator=g)
            x *= torch.exp(torch.empty(m, 1, device="cuda").uniform_(-2, 2, generator=g))
            self.x.append(x.to(torch.bfloat16))


def make_weights(shape: Shape) -> dict:
    """The layer's weight in every form the methods take, in enough copies
    to span SPAN_BYTES: bf16; FP8 with per-channel, per-tensor and 128x128
    block scales (every model N and K is a multiple of 128)."""
    n, k = shape.n, shape.k
    copies = max(1, math.ceil(SPAN_BYTES / (n * k)))
    g = torch.Generator(device="cuda").manual_seed(n + k)
    w = torch.randn(n, k, device="cuda", generator=g) * 0.02
    ch_scale = w.abs().amax(dim=1) / 448.0
    t_scale = (w.abs().amax() / 448.0).reshape(1)
    blocks = w.reshape(n // 128, 128, k // 128, 128)
    block_scale_inv = blocks.abs().amax(dim=(1, 3)) / 448.0  # [N/128, K/128]
    quantized = {
        "token": w / ch_scale[:, None],
        "tensor": w / t_scale,
        "block": (blocks / block_scale_inv[:, None, :, None]).reshape(n, k),
    }
    weights = {key: [q.to(FP8) for _ in range(copies)] for key, q in quantized.items()}
    # the bf16 weight in copies of its own: one copy would stay in L2 wherever
    # it is under 50 MB (o_proj, qkv_proj) and time a warm-cache baseline
    weights["bf16"] = [w.to(torch.bfloat16) for _ in range(math.ceil(copies / 2))]
    weights.update(copies=copies, ch_scale=ch_scale, t_scale=t_scale,
                   block_scale_inv=block_scale_inv.contiguous(),
                   bias=(torch.randn(n, device="cuda", generator=g) * 0.1).to(torch.bfloat16)
                   if shape.bias else None)
    return weights


def dequantized_weight(w: dict, method: str) -> torch.Tensor:
    """float64 [N, K] weight a method multiplies by (for validation)."""
    if method == "bf16":
        return w["bf16"][0].double()
    if "block" in method:
        sb = w["block_scale_inv"].double().repeat_interleave(128, 0).repeat_interleave(128, 1)
        return w["block"][0].double() * sb
    if "tensor" in method:
        return w["tensor"][0].double() * w["t_scale"].double()
    return w["token"][0].double() * w["ch_scale"].double()[:, None]


def layer_methods(ops: Operands, up: "Upstream | None", compiled: dict) -> dict:
    """name -> fn(i): one whole layer (bf16 x -> bf16 y) on operand copy i."""
    w, x, bias = ops.w, ops.x, ops.w["bias"]

    def wt(i, key):  # [K, N] view of weight copy i
        return w[key][i % w["copies"]].t()

    token, tensor = ActivationScheme.DYNAMIC_TOKEN, ActivationScheme.DYNAMIC_TENSOR
    methods = {
        "ours_cuda_token": lambda i: fp8_linear(x[i], wt(i, "token"), w["ch_scale"], token,
                                                bias=bias),
        "ours_cuda_tensor": lambda i: fp8_linear(x[i], wt(i, "tensor"), w["t_scale"], tensor,
                                                 bias=bias),
        "ours_triton_token": lambda i: triton_layer(x[i], wt(i, "token"), w["ch_scale"], bias),
        "cublas_tensor": lambda i: cublas_tensor(x[i], wt(i, "tensor"), w["t_scale"], bias),
        "cublas_rowwise": lambda i: cublas_rowwise(x[i], wt(i, "token"), w["ch_scale"], bias),
        "bf16": lambda i: torch.nn.functional.linear(x[i], w["bf16"][i % len(w["bf16"])], bias),
    }
    if (splitk := splitk_config(x[0].shape[0])) is not None:  # our quant + the split-K GEMM
        def splitk_layer(i):
            q, s = cf8.scaled_fp8_quant(x[i], use_per_token_if_dynamic=True)
            return cf8.scaled_mm(q, wt(i, "token"), s, w["ch_scale"], x[i].dtype, bias,
                                 config=splitk)
        methods["ours_splitk_token"] = splitk_layer
    if up is not None:
        methods.update({
            "vllm_eager_token": lambda i: up.layer(up.per_token_quant, x[i], wt(i, "token"),
                                                   w["ch_scale"], bias),
            "vllm_compiled_token": lambda i: up.layer(compiled["token"], x[i], wt(i, "token"),
                                                      w["ch_scale"], bias),
            "vllm_online_tensor": lambda i: up.layer(compiled["tensor"], x[i], wt(i, "tensor"),
                                                     w["t_scale"], bias),
        })
    return methods


def block_methods(ops: Operands, up: "Upstream | None") -> dict:
    """Block FP8 (128x128 weight blocks, 1x128 activation groups): our layer
    and GEMM alone; upstream's CUTLASS block path; with the block bundle
    (tools/gpu/block_env.sh), upstream's real Hopper default
    (FlashInferFp8DeepGEMMDynamicBlockScaledKernel: FlashInfer below M = 32,
    its group quant + DeepGEMM above, E8M0 scales) and DeepGEMM with float32
    scales fed by the same group quant, layer and GEMM alone."""
    w, x = ops.w, ops.x

    def w_fp32(i):  # [N, K], float32 block scales (the checkpoint's)
        return w["block"][i % w["copies"]]

    def wt(i):  # [K, N], as our block GEMM and upstream's CUTLASS take it
        return w_fp32(i).t()

    scale_t = w["block_scale_inv"].t()
    pre = [cf8.per_token_group_quant_fp8(xi, column_major_scales=True, tma_aligned_scales=True)
           for xi in x]
    ops.block_codes = pre[0]
    methods = {
        "ours_cuda_block": lambda i: fp8_linear(x[i], wt(i), scale_t, ActivationScheme.DYNAMIC_GROUP),
        "gemm_ours_block": lambda i: cf8.block_scaled_mm(pre[i][0], wt(i), pre[i][1], scale_t,
                                                         torch.bfloat16),
        "ours_triton_block": lambda i: triton_block_layer(x[i], wt(i), scale_t),
    }
    if x[0].shape[0] >= 128 and cf8.CUDA_BACKEND == "cuda":  # our main loop, block-scaled
        for wave in wave_configs(block_scaled=True):  # gemm_block_wave_MxNx128
            methods[f"gemm_block_{block_scaled_mm_configs()[wave]}"] = \
                lambda i, c=wave: cf8.block_scaled_mm(pre[i][0], wt(i), pre[i][1], scale_t,
                                                      torch.bfloat16, config=c)
    if up is None:
        return methods
    methods["vllm_block"] = lambda i: up.layer(up.group_quant, x[i], wt(i), scale_t, None)
    if UPSTREAM_BLOCK is None:
        return methods
    if "block_e8m0" not in w:  # DeepGemmFp8BlockScaledMMKernel.process_weights_after_loading
        e8m0 = UPSTREAM_BLOCK.process_weight(w["block"][0], w["block_scale_inv"], use_e8m0=True)
        w["block_e8m0"] = [e8m0[0]] + [e8m0[0].clone() for _ in range(w["copies"] - 1)]
        w["block_e8m0_scale"] = e8m0[1]

    def w_e8m0(i):
        return w["block_e8m0"][i % w["copies"]]

    sb, sb_e8m0 = w["block_scale_inv"], w["block_e8m0_scale"]
    methods.update({
        "vllm_default_block": lambda i: UPSTREAM_BLOCK.vllm_block_linear(x[i], w_e8m0(i), sb_e8m0),
        "deepgemm_f32_block": lambda i: UPSTREAM_BLOCK.dg_gemm(
            *UPSTREAM_BLOCK.quant_act(x[i], use_ue8m0=False), w_fp32(i), sb, use_ue8m0=False),
        "gemm_deepgemm_f32_block": lambda i: UPSTREAM_BLOCK.dg_gemm(
            pre[i][0], pre[i][1], w_fp32(i), sb, use_ue8m0=False),
    })
    return methods


def load_upstream_block():
    """benchmarks/upstream_block.py with DeepGEMM and FlashInfer importable, else None."""
    try:
        sys.path.insert(0, str(REPO / "benchmarks"))
        import upstream_block
        upstream_block.setup_like_vllm()
        import flashinfer.gemm  # noqa: F401
    except Exception as e:  # noqa: BLE001 - the block group then runs without them
        print(f"upstream block baselines (DeepGEMM, FlashInfer) unavailable: {e!r}")
        return None
    return upstream_block


UPSTREAM_BLOCK = None


def component_methods(ops: Operands, up: "Upstream | None") -> dict:
    """The GEMM alone (pre-quantized activations), the quant alone, and a
    device copy of the quant's bytes (its achievable floor)."""
    w, x = ops.w, ops.x
    pre = [cf8.scaled_fp8_quant(xi, use_per_token_if_dynamic=True) for xi in x]
    m, k = x[0].shape
    src = torch.empty(m * k * 3 // 2, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)

    def wt(i):
        return w["token"][i % w["copies"]].t()

    methods = {
        "gemm_ours_token": lambda i: cf8.scaled_mm(pre[i][0], wt(i), pre[i][1], w["ch_scale"],
                                                   torch.bfloat16),
        "quant_ours_token": lambda i: cf8.scaled_fp8_quant(x[i], use_per_token_if_dynamic=True),
        "quant_ours_tensor": lambda i: cf8.scaled_fp8_quant(x[i]),
        "copy": lambda i: dst.copy_(src),
    }
    # The weight read alone, as the read ceiling reads: what a pure stream of
    # this many bytes reaches from a cold L2 (launch, ramp and tail included),
    # the floor no GEMM of this shape can beat.
    words = [w["token"][c].view(torch.int32).view(-1) for c in range(w["copies"])]
    if words[0].numel() % 1024 == 0:
        sms = torch.cuda.get_device_properties(0).multi_processor_count
        partial = torch.empty(4 * sms, dtype=torch.int32, device="cuda")
        methods["read_weight"] = lambda i: _read_stream_kernel[(4 * sms,)](
            words[i % len(words)], partial, words[0].numel(), BLOCK=1024, num_warps=4)
    # Our GEMM on one weight copy only, which stays in the 50 MB L2 where it
    # fits: what a perfect prefetch ahead of the GEMM would give (the decode
    # lever of docs/performance.md).
    if w["token"][0].numel() <= 32e6:
        methods["gemm_ours_token_l2"] = lambda i: cf8.scaled_mm(
            pre[i][0], wt(0), pre[i][1], w["ch_scale"], torch.bfloat16)
    if (splitk := splitk_config(m)) is not None:
        methods["gemm_ours_splitk"] = lambda i: cf8.scaled_mm(
            pre[i][0], wt(i), pre[i][1], w["ch_scale"], torch.bfloat16, config=splitk)
    if m <= 64 and cf8.CUDA_BACKEND == "cuda":  # each swap-AB decode kernel, forced
        # (gemm_swap_*): at M = 4 the dispatched one measured ~1 us slower
        # here than at M = 1 and 16 while the tuner timed its choice there
        # flat; whether the dispatch or the kernel is slower shows beside it
        for config, name in enumerate(scaled_mm_configs()):
            if name.startswith("swap_64x"):
                methods[f"gemm_{name}"] = lambda i, c=config: cf8.scaled_mm(
                    pre[i][0], wt(i), pre[i][1], w["ch_scale"], torch.bfloat16, config=c)
    if m >= 128 and cf8.CUDA_BACKEND == "cuda":  # our main loop for compute-bound M
        for wave in wave_configs():  # gemm_wave_MxNx128
            methods[f"gemm_{scaled_mm_configs()[wave]}"] = lambda i, c=wave: cf8.scaled_mm(
                pre[i][0], wt(i), pre[i][1], w["ch_scale"], torch.bfloat16, config=c)
    if up is not None:
        methods["gemm_vllm_token"] = lambda i: up.scaled_mm(pre[i][0], wt(i), pre[i][1],
                                                            w["ch_scale"])
        methods["quant_vllm_token"] = lambda i: up.per_token_quant(x[i])
    return methods


# The producer of each projection's input in a decoder layer, which issue 8's
# fused kernels merge with the quant (o_proj's input, the attention output, has none).
PRODUCERS = {"qkv_proj": "norm", "gate_up_proj": "norm", "down_proj": "silu"}
RMS_EPS = 1e-5


def _native_producer(producer: str):
    """vLLM's native RMSNorm / SiLU-and-mul in the form Inductor compiles them
    to (the CPU backend's producers: docs/numerics.md), as fn(x, norm_weight)."""
    if producer == "norm":
        return lambda x, norm_w: rms_norm_in_dtype(x, norm_w, RMS_EPS, None)
    return lambda x, norm_w: silu_and_mul_in_dtype(x)


# Compiled once per producer for every shape and M (dynamic shapes): the
# producer alone (the fork without its fusion pass: Inductor's producer, then
# our quant op), and producer + quant in one graph (upstream's compiled mode,
# where Inductor fuses the two).
NATIVE = {p: torch.compile(_native_producer(p), dynamic=True) for p in ("norm", "silu")}
NATIVE_WITH_QUANT = {
    p: torch.compile(lambda x, norm_w, f=_native_producer(p): native_quant_math(f(x, norm_w), True),
                     dynamic=True)
    for p in ("norm", "silu")}


def producer_inputs(ops: Operands, producer: str) -> list:
    """The producer's inputs per operand copy: the hidden states (norm), or
    [gate | up] whose SiLU-and-mul has the activation's scale (silu)."""
    if producer == "norm":
        return ops.x
    return [torch.cat([torch.randn_like(x) * 2, x], dim=1) for x in ops.x]


def fused_methods(ops: Operands, up: "Upstream | None") -> dict:
    """Producer + quant + GEMM (issue 8): our fused producer feeding our GEMM
    (fused_ours_*), against the Inductor-compiled native producer + our quant
    + GEMM (unfused_ours_*: the fork without its fusion pass) and, with
    upstream's _C, upstream's compiled mode (compiled_vllm_*: Inductor fuses
    the native producer and quant into one kernel) + CUTLASS."""
    producer = PRODUCERS.get(ops.shape.proj)
    if producer is None:
        return {}
    w, inputs = ops.w, producer_inputs(ops, producer)
    norm_w = (1 + 0.1 * torch.randn(ops.shape.k, device="cuda")).to(torch.bfloat16)
    token = ActivationScheme.DYNAMIC_TOKEN

    def wt(i):
        return w["token"][i % w["copies"]].t()

    if producer == "norm":
        fused = lambda i: cf8.rms_norm_fp8_quant(inputs[i], norm_w, RMS_EPS)  # noqa: E731
    else:
        fused = lambda i: cf8.silu_and_mul_fp8_quant(inputs[i])  # noqa: E731
    native, native_with_quant = NATIVE[producer], NATIVE_WITH_QUANT[producer]
    methods = {
        f"fused_ours_{producer}": lambda i: fused_layer(fused(i), wt(i), w["ch_scale"], w["bias"]),
        f"unfused_ours_{producer}": lambda i: fp8_linear(native(inputs[i], norm_w), wt(i),
                                                         w["ch_scale"], token, bias=w["bias"]),
    }
    if up is not None:
        methods[f"compiled_vllm_{producer}"] = lambda i: up.layer(
            lambda x: native_with_quant(x, norm_w), inputs[i], wt(i), w["ch_scale"], w["bias"])
    ops.producer = (producer, norm_w, inputs)
    return methods


class Upstream:
    """Upstream vLLM 0.25.1's CUDA ops from its released _C library."""

    def __init__(self, path: str):
        torch.ops.load_library(path)
        self.ops = torch.ops._C

    def per_token_quant(self, x):
        q = torch.empty(x.shape, dtype=FP8, device=x.device)
        s = torch.empty(x.shape[0], 1, dtype=torch.float32, device=x.device)
        self.ops.dynamic_per_token_scaled_fp8_quant(q, x, s, None)
        return q, s

    def group_quant(self, x):
        m, k = x.shape
        q = torch.empty(x.shape, dtype=FP8, device=x.device)
        s = torch.empty(k // 128, m, dtype=torch.float32, device=x.device).t()
        self.ops.per_token_group_fp8_quant(x, q, s, 128, 1e-10, -448.0, 448.0, False, False, False)
        return q, s

    def scaled_mm(self, a, b, sa, sb, bias=None):
        out = torch.empty(a.shape[0], b.shape[1], dtype=torch.bfloat16, device=a.device)
        self.ops.cutlass_scaled_mm(out, a, b, sa, sb, bias)
        return out

    def layer(self, quant, x, b, sb, bias):
        q, s = quant(x)
        return self.scaled_mm(q, b, s, sb, bias)


def fused_layer(quantized, b, sb, bias):
    q, s = quantized
    return cf8.scaled_mm(q, b, s, sb, torch.bfloat16, bias)


def cublas_tensor(x, b, sb, bias):
    q, s = cf8.scaled_fp8_quant(x)
    return torch._scaled_mm(q, b, s.reshape(()), sb.reshape(()), bias=bias,
                            out_dtype=torch.bfloat16)


def cublas_rowwise(x, b, sb, bias):
    q, s = cf8.scaled_fp8_quant(x, use_per_token_if_dynamic=True)
    return torch._scaled_mm(q, b, s, sb.reshape(1, -1), bias=bias, out_dtype=torch.bfloat16)


def triton_layer(x, b, sb, bias):
    q = torch.empty(x.shape, dtype=FP8, device=x.device)
    s = torch.empty(x.shape[0], 1, dtype=torch.float32, device=x.device)
    cf8_triton.dynamic_per_token_scaled_fp8_quant(q, x, s, None)
    out = torch.empty(x.shape[0], b.shape[1], dtype=torch.bfloat16, device=x.device)
    cf8_triton.scaled_mm(out, q, b, s, sb, bias)
    return out


def triton_block_layer(x, b, sb):
    m, k = x.shape
    q = torch.empty(x.shape, dtype=FP8, device=x.device)
    s = torch.empty(k // 128, m, dtype=torch.float32, device=x.device).t()
    cf8_triton.per_token_group_fp8_quant(q, x, s, 128)
    out = torch.empty(m, b.shape[1], dtype=torch.bfloat16, device=x.device)
    cf8_triton.block_scaled_mm(out, q, b, s, sb)
    return out


# ----------------------------------------------------------------- driver

PRESETS = {
    "full": dict(models=["llama-3-8b", "qwen2.5-7b"], tp=[1, 2],
                 m=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]),
    "quick": dict(models=["llama-3-8b", "qwen2.5-7b"], tp=[1], m=[1, 16, 64, 256, 1024, 4096]),
}
GROUPS = {"layer": layer_methods, "block": block_methods, "component": component_methods,
          "fused": fused_methods}
# Validation: relative-error metric against float64 of the same weights.
# Layers quantize the activation to FP8 (3 mantissa bits: metric ~1e-3);
# a GEMM alone sees the same codes as its reference (tests/gemm_check.py).
TOLERANCE = {"layer": 5e-3, "block": 5e-3, "gemm": 1e-5, "bf16": 1e-4}


def validate(name: str, fn, ops: Operands, shape: Shape) -> str | None:
    """None if fn's output matches float64 within its tolerance, else why not."""
    if name.startswith(("quant_", "copy", "read_")):
        return None  # bit-exactness of the quant is tests/test_upstream_parity.py's job
    try:
        out = fn(0)
    except Exception as e:  # noqa: BLE001 - a method that cannot run is reported, not fatal
        return f"raised {type(e).__name__}: {e}"
    out = out if isinstance(out, torch.Tensor) else out[0]
    w = ops.w
    if name.startswith("gemm_") and "block" in name:  # gemm_*_block, gemm_block_wave_*
        q, sc = ops.block_codes
        m, k = q.shape
        a = (q.double().view(m, k // 128, 128) * sc.double()[..., None]).view(m, k)
        ref = a @ dequantized_weight(w, "block").t()
        tol = TOLERANCE["gemm"]
    elif name.startswith("gemm_"):
        q, s = cf8.scaled_fp8_quant(ops.x[0], use_per_token_if_dynamic=True)
        ref = (q.double() * s.double()) @ dequantized_weight(w, "token").t()
        tol = TOLERANCE["gemm"]
    elif ops.producer is not None and name.endswith(("_norm", "_silu")):
        producer, norm_w, inputs = ops.producer
        x = inputs[0].double()
        act = (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * norm_w.double()
               if producer == "norm" else silu_and_mul_in_dtype(x))
        ref = act @ dequantized_weight(w, "token").t()
        if w["bias"] is not None:
            ref += w["bias"].double()
        tol = TOLERANCE["layer"]
    else:
        ref = ops.x[0].double() @ dequantized_weight(w, name).t()
        if w["bias"] is not None and "block" not in name:
            ref += w["bias"].double()
        tol = TOLERANCE["bf16" if name == "bf16" else "layer"]
    err = rel_error(out, ref)
    return None if err < tol else f"relative error {err:.3g} >= {tol}"


def row_metrics(name: str, shape: Shape, m: int, t: float, ceil: dict) -> dict:
    """Bytes, FLOPs and two roofline floors: `floor_us` (every byte over the
    copy bandwidth, the column of earlier runs) and `floor_read_us` (bytes
    read over the read-stream bandwidth plus bytes written over the copy
    bandwidth: what a memory-bound layer, a weight stream, can reach)."""
    n, k = shape.n, shape.k
    written = 2 * m * n
    if name == "read_weight":
        read, written, flops = n * k, 0, 0
    elif name.startswith(("quant_", "copy")):
        read, written, flops = 2 * m * k, m * k + 4 * m, 0
    elif name.startswith("gemm_"):
        read, flops = m * k + n * k, 2 * m * n * k
    elif name.endswith("_silu"):  # the producer reads [gate | up] in bf16
        read, flops = 4 * m * k + n * k, 2 * m * n * k
    else:  # a whole layer reads the bf16 activation
        read, flops = 2 * m * k + n * k * (2 if name == "bf16" else 1), 2 * m * n * k
    nbytes, t_flops = read + written, flops / ceil["fp8_peak_flops"]
    floor = max(nbytes / ceil["copy_bw_Bps"], t_flops)
    floor_read = max(read / ceil["read_bw_Bps"] + written / ceil["copy_bw_Bps"], t_flops)
    return {"bytes": nbytes, "read_bytes": read, "flops": flops,
            "floor_us": floor * 1e6, "pct_floor": 100 * floor / t,
            "floor_read_us": floor_read * 1e6, "pct_floor_read": 100 * floor_read / t,
            "tflops": flops / t / 1e12, "gbps": nbytes / t / 1e9}


def metadata(ceil: dict) -> dict:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,power.limit",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
    import triton
    return {"device": torch.cuda.get_device_name(), "nvidia_smi": smi,
            "torch": torch.__version__, "cuda": torch.version.cuda, "triton": triton.__version__,
            "commit": os.environ.get("CUSTOM_FP8_COMMIT", "unknown"),
            "custom_fp8_backend": cf8.CUDA_BACKEND, "date": time.strftime("%Y-%m-%d %H:%M UTC"),
            "argv": sys.argv[1:],
            **ceil}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--preset", choices=PRESETS, default="full")
    p.add_argument("--models", nargs="+")
    p.add_argument("--projections", nargs="+",
                   default=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
    p.add_argument("--tp", nargs="+", type=int)
    p.add_argument("--m", nargs="+", type=int)
    p.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--eager", action="store_true", help="also time from a host loop")
    p.add_argument("--shard", default="0/1", help="i/n: run every n-th shape from the i-th")
    p.add_argument("--upstream-c", default=os.environ.get("VLLM_UPSTREAM_C"))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    preset = PRESETS[args.preset]
    models, tps, ms = args.models or preset["models"], args.tp or preset["tp"], args.m or preset["m"]
    shard, n_shards = map(int, args.shard.split("/"))

    up = Upstream(args.upstream_c) if args.upstream_c else None
    if up is not None and "block" in args.groups:
        global UPSTREAM_BLOCK
        UPSTREAM_BLOCK = load_upstream_block()
    compiled = {"token": native_quant(True), "tensor": native_quant(False)}
    ceil = ceilings()
    result = {"meta": metadata(ceil), "rows": [], "invalid": []}
    print(f"copy {ceil['copy_bw_Bps'] / 1e9:.0f} GB/s, read {ceil['read_bw_Bps'] / 1e9:.0f} GB/s,"
          f" FP8 peak {ceil['fp8_peak_flops'] / 1e12:.0f}"
          f" TFLOP/s, backend {cf8.CUDA_BACKEND}", flush=True)
    shapes = list(model_shapes(models, args.projections, tps))[shard::n_shards]
    for shape in shapes:
        weights = make_weights(shape)
        for m in ms:
            ops = Operands(shape, m, weights)
            methods = {}
            for group in args.groups:
                builder = GROUPS[group]
                methods.update(builder(ops, up, compiled) if group == "layer" else builder(ops, up))
            valid = {}
            for name, fn in methods.items():
                why = validate(name, fn, ops, shape)
                if why:
                    result["invalid"].append({**asdict(shape), "m": m, "method": name, "why": why})
                    print(f"INVALID {shape.model} {shape.proj} tp{shape.tp} M={m} {name}: {why}")
                else:
                    valid[name] = fn
            times = time_graphs(valid, ops.n_copies, args.repeats)
            for name, ts in times.items():
                t = statistics.median(ts)
                row = {**asdict(shape), "m": m, "method": name, "t_graph_us": t * 1e6,
                       "t_graph_runs_us": [x * 1e6 for x in ts],
                       **row_metrics(name, shape, m, t, ceil)}
                if args.eager:
                    row["t_eager_us"] = time_eager(valid[name], ops.n_copies) * 1e6
                result["rows"].append(row)
            line = "  ".join(f"{name}={statistics.median(ts) * 1e6:.1f}" for name, ts in times.items())
            print(f"{shape.model} {shape.proj} tp{shape.tp} M={m}: {line}", flush=True)
            del ops
        del weights
        torch.cuda.empty_cache()
        Path(args.out).write_text(json.dumps(result, indent=1))
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
