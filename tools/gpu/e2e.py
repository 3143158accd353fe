#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The fork's vLLM end to end on the GPU machine (run by tools/gpu/e2e.sh,
which sets up the upstream and the fork site, and the plugin site: stock
vLLM with our plugin wheel, and picks the site for each step through
PYTHONPATH).

    e2e.py checkpoints --root DIR                 realistic random checkpoints
    e2e.py fidelity --root DIR --site S --variants V,... --out F.json
    e2e.py fidelity-report --upstream U.json --fork F.json --out R.json
    e2e.py profile --root DIR --out P.json        kernel names of one decode step
    e2e.py load --port 8000 --out L.json          1000 requests against `vllm serve`

Checkpoints (shared/STANDARDS.md §6): Llama-3-8B- and Qwen2.5-7B-shaped, real
hidden/intermediate/head sizes, 2 layers, vocab 32000, weights at realistic
scale (tests/engine/checkpoints.py: std 0.02 projections with heavier input
channels, real RMSNorm weights, logits spread over a few units), in every
FP8 checkpoint kind (online / serialized per-tensor / compressed-tensors
channel-token / block 128x128 / per-tensor with calibrated static input
scales).

Fidelity: teacher-forced top-20 prompt logprobs of three prompt batches
(one 8-token prompt: M = 8; 16 x 16 tokens: M = 256; one 1024-token prompt)
from in-process engines, one after another. Variants: "auto" (vLLM's own
kernel choice: on the fork, our kernels), "torch" / "triton" (upstream's
cuBLASLt or Triton kernel: the control pair's second member), "disabled"
(the fork with VLLM_CUSTOM_FP8_DISABLE=1: upstream's kernels through the
patched tree, which must give upstream's logprobs exactly), "compiled" and
"compiled_fused" (the fork compiled, CUDA graphs on, without and with its
fusion pass: the fused producers should change nothing). Eager otherwise, so
that one process can run a dozen engines inside a device call; the compiled,
CUDA-graph engine also runs in `profile`, the throughput runs and the server.
"""

import argparse
import collections
import dataclasses
import json
import math
import os
import random
import statistics
import sys
import threading
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.engine import checkpoints  # noqa: E402

VOCAB = 32000
SPECS = {
    "llama": dataclasses.replace(
        checkpoints.MODELS["llama"], name="llama3-8b-2l", hidden=4096, intermediate=14336,
        heads=32, kv_heads=8, head_dim=128, layers=2, vocab=VOCAB, rope_theta=500000.0,
        logit_scale=(256 / 4096) ** 0.5),
    "qwen2": dataclasses.replace(
        checkpoints.MODELS["qwen2"], name="qwen2.5-7b-2l", hidden=3584, intermediate=18944,
        heads=28, kv_heads=4, head_dim=128, layers=2, vocab=VOCAB,
        logit_scale=(256 / 3584) ** 0.5),
}
# E2E_SPECS=tiny: the CPU engine tests' tiny models, to try this script on a CPU
if os.environ.get("E2E_SPECS") == "tiny":
    SPECS = {m: dataclasses.replace(s, vocab=VOCAB) for m, s in checkpoints.MODELS.items()}
KINDS = checkpoints.KINDS
TOP_LOGPROBS = 20       # returned per position
TOP_K = 5               # compared: the reference's top-5 tokens
PROMPT_SETS = {"m8": (1, 8), "m256": (16, 16), "m1024": (1, 1024)}  # (prompts, tokens)
CONTROL = {"online": "torch", "fp8": "torch", "ct": "torch", "block": "triton", "static": "torch"}
# our kernels' namespace: in every kernel symbol of the library (GEMMs: NamedKernel)
OUR_KERNEL_TAG = "custom_fp8"


def checkpoint_dir(root: Path, model: str, kind: str) -> Path:
    return root / f"{model}-{'bf16' if kind == 'online' else kind}"


def cmd_checkpoints(args) -> int:
    import torch

    root = Path(args.root)
    for model, spec in SPECS.items():
        t = time.perf_counter()
        device = "cuda" if torch.cuda.is_available() else "cpu"
        weights = checkpoints.bf16_weights(spec, device=device)
        checkpoints.write_checkpoint(checkpoint_dir(root, model, "online"), spec, weights)
        on_gpu = {k: v.to(device) for k, v in weights.items()}
        for kind in KINDS[1:]:
            checkpoints.write_fp8_checkpoint(checkpoint_dir(root, model, kind), spec, on_gpu,
                                             kind, checkpoint_dir(root, model, "online"))
        del on_gpu
        torch.cuda.empty_cache()
        print(f"E2E checkpoints {model}: {time.perf_counter() - t:.1f} s", flush=True)
    return 0


def prompts_for(name: str) -> list[list[int]]:
    n, length = PROMPT_SETS[name]
    rng = random.Random(zlib.crc32(name.encode()))  # the same prompts in every process
    return [[rng.randrange(3, VOCAB) for _ in range(length)] for _ in range(n)]


def engine_kwargs(path: Path, kind: str, **extra) -> dict:
    kw = dict(model=str(path), skip_tokenizer_init=True, max_model_len=2048, seed=0,
              dtype="bfloat16")
    if backend := os.environ.get("E2E_ATTENTION_BACKEND", "TRITON_ATTN"):
        kw["attention_backend"] = backend  # the bundle's only attention backend
    kw.update(checkpoints.engine_kwargs(kind))
    if int(os.environ.get("E2E_TP", "1")) > 1:   # tensor parallel (the two-GPU kind)
        kw["tensor_parallel_size"] = int(os.environ["E2E_TP"])
    kw.update(extra)
    return with_inductor_pass(kw)


def with_inductor_pass(kw: dict) -> dict:
    """Plugin mode: e2e.sh sets E2E_INDUCTOR_PASS (the plugin's fusion pass,
    a no-op under VLLM_CUSTOM_FP8_FUSION=0) on the plugin site, where the
    pass is the user's opt-in through CompilationConfig.inductor_passes."""
    if qualname := os.environ.get("E2E_INDUCTOR_PASS"):
        kw["compilation_config"] = {**kw.get("compilation_config", {}),
                                    "inductor_passes": {"post_grad_custom_post_pass": qualname}}
    return kw


def top_logprobs(output) -> list[dict[int, float]]:
    return [{int(t): lp.logprob for t, lp in row.items()} for row in output.prompt_logprobs[1:]]


def release_engine_memory() -> None:
    """Free a deleted in-process engine's GPU memory before the next one
    starts: vLLM gc.freeze()s everything after start-up (frozen objects are
    never collected) and keeps its process groups; its own test cleanup
    undoes both."""
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    cleanup_dist_env_and_memory()


def run_fidelity_engine(path: Path, kind: str, variant: str) -> dict:
    from vllm import LLM, SamplingParams

    from tests.engine import harness

    os.environ["VLLM_CUSTOM_FP8_DISABLE"] = "1" if variant == "disabled" else "0"
    os.environ["VLLM_CUSTOM_FP8_FUSION"] = "1" if variant == "compiled_fused" else "0"
    compiled = variant.startswith("compiled")
    extra = ({} if variant in ("auto", "disabled") or compiled else {"linear_backend": variant})
    if compiled:
        extra["compilation_config"] = {"cudagraph_capture_sizes": [1, 2, 4, 8]}
    t = time.perf_counter()
    with harness.vllm_log_records() as records:
        llm = LLM(**engine_kwargs(path, kind, enforce_eager=not compiled,
                                  gpu_memory_utilization=0.12, max_logprobs=TOP_LOGPROBS, **extra))
        selected = sorted(set(harness.selected_kernels(records)))
    try:
        init_s = time.perf_counter() - t
        # one result per tensor-parallel rank; every rank holds a shard of the
        # same layers, so rank 0's kernels and activation keys stand for all
        (layers, _), *_ = llm.apply_model(harness.describe_model)
        params = SamplingParams(max_tokens=1, prompt_logprobs=TOP_LOGPROBS, detokenize=False)
        logprobs = {}
        for name in PROMPT_SETS:
            outs = llm.generate([{"prompt_token_ids": p} for p in prompts_for(name)], params,
                                use_tqdm=False)
            logprobs[name] = [top_logprobs(o) for o in outs]
    finally:
        del llm
        release_engine_memory()
    return dict(kind=kind, variant=variant, selected=selected, init_s=round(init_s, 1),
                seconds=round(time.perf_counter() - t, 1),
                layers=[(x.name, x.kernel, str(x.activation_quant_key)) for x in layers],
                logprobs=logprobs)


def cmd_fidelity(args) -> int:
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # engines in this process
    import torch
    import vllm

    root, out = Path(args.root), Path(args.out)
    result = {"site": args.site, "vllm": vllm.__version__, "runs": {}}
    deadline = time.time() + args.budget
    for model in args.models.split(","):
        for kind in args.kinds.split(","):
            for variant in args.variants.split(","):
                variant = CONTROL[kind] if variant == "control" else variant
                key = f"{model}/{kind}/{variant}"
                if time.time() > deadline:
                    result["runs"][key] = {"skipped": "out of time"}
                    continue
                try:
                    r = run_fidelity_engine(checkpoint_dir(root, model, kind), kind, variant)
                except Exception as e:  # record it, go on with the next engine
                    r = {"error": f"{type(e).__name__}: {e}"[:2000]}
                    release_engine_memory()
                result["runs"][key] = r
                free = torch.cuda.mem_get_info()[0] / 2**30 if torch.cuda.is_available() else 0
                print(f"E2E fidelity {args.site} {key}: "
                      f"{r.get('error') or r.get('selected')} ({r.get('seconds')} s; "
                      f"{free:.1f} GiB free after it)", flush=True)
                out.write_text(json.dumps(result))
    return 0


def compare(ref: dict, got: dict) -> dict:
    """GOT vs REF (runs of one checkpoint): mean |dlogprob| over REF's top-5
    tokens at every position, top-1 agreement, and tokens of REF's top-5 that
    GOT's top-20 lacks (counted, left out of the mean)."""
    diffs, agree, positions, missing = [], 0, 0, 0
    for name in PROMPT_SETS:
        for ref_rows, got_rows in zip(ref["logprobs"][name], got["logprobs"][name]):
            for r, g in zip(ref_rows, got_rows):
                top = sorted(r, key=r.get, reverse=True)[:TOP_K]
                for token in top:
                    if token in g:
                        diffs.append(abs(g[token] - r[token]))
                    else:
                        missing += 1
                agree += max(g, key=g.get) == top[0]
                positions += 1
    return dict(mean_abs_dlogp=sum(diffs) / max(len(diffs), 1), max_abs_dlogp=max(diffs, default=0),
                top1_agreement=agree / max(positions, 1), positions=positions, missing=missing)


# The fork may differ from upstream by up to 1.5x the control pair's difference
# (mean |dlogprob|, and top-5 tokens missing from the top-20).
BAND_FACTOR = 1.5


def cmd_fidelity_report(args) -> int:
    up = json.loads(Path(args.upstream).read_text())["runs"]
    fork = json.loads(Path(args.fork).read_text())["runs"]
    rows, ok = [], True
    for key in sorted(k for k in up if k.endswith("/auto")):
        model, kind, _ = key.split("/")
        ref = up[key]
        row = {"model": model, "kind": kind, "upstream_selected": ref.get("selected")}
        control_key = f"{model}/{kind}/{CONTROL[kind]}"
        for label, other in (("control", up.get(control_key)),
                             ("fork", fork.get(f"{model}/{kind}/auto")),
                             ("fork_compiled_fused", fork.get(f"{model}/{kind}/compiled_fused")),
                             ("fork_disabled", fork.get(f"{model}/{kind}/disabled"))):
            if other is None or "logprobs" not in other or "logprobs" not in ref:
                row[label] = {"missing": (other or ref or {}).get("error") or
                              (other or {}).get("skipped") or "not run"}
                continue
            row[label] = compare(ref, other)
            row[label]["selected"] = other["selected"]
            if label == "fork":
                row["fork_layers"] = collections.Counter(x[1] for x in other["layers"])
                row["fork_act_keys"] = sorted({x[2] for x in other["layers"]})
                row["upstream_act_keys"] = sorted({x[2] for x in ref["layers"]})
        c, f = row.get("control", {}), row.get("fork", {})
        if "mean_abs_dlogp" in c and "mean_abs_dlogp" in f:
            band = BAND_FACTOR * c["mean_abs_dlogp"]
            # upstream top-5 tokens outside the other's top-20 occur where the tail is
            # flat; the control pair has them too
            missing_band = max(BAND_FACTOR * c["missing"], 5)
            within = lambda d: d["mean_abs_dlogp"] <= band and d["missing"] <= missing_band  # noqa: E731
            row["verdict"] = ("pass" if within(f) and row["fork_act_keys"] == row["upstream_act_keys"]
                              else "FAIL")
            row["band"] = band
            # the default deployment (compiled, CUDA graphs, fusion pass) against
            # upstream's eager reference, in the band of two eager upstream runs:
            # what Inductor's own rounding of the producers moves counts against it
            cf = row.get("fork_compiled_fused", {})
            if "mean_abs_dlogp" in cf:
                row["compiled_fused_verdict"] = "pass" if within(cf) else "FAIL"
        else:
            row["verdict"] = "not run"
        plain, fused = (fork.get(f"{model}/{kind}/{v}") for v in ("compiled", "compiled_fused"))
        if plain and fused and "logprobs" in plain and "logprobs" in fused:
            row["fusion_vs_unfused"] = compare(plain, fused)   # both compiled, same process
        d = row.get("fork_disabled", {})
        if "mean_abs_dlogp" in d:
            row["disabled_identical"] = d["max_abs_dlogp"] == 0.0
        ok &= (row["verdict"] != "FAIL" and row.get("compiled_fused_verdict") != "FAIL"
               and row.get("disabled_identical", True))
        rows.append(row)
        print("E2E fidelity", json.dumps(row, default=str)[:1500], flush=True)
    Path(args.out).write_text(json.dumps({"band_factor": BAND_FACTOR, "rows": rows}, indent=1,
                                         default=str))
    return 0 if ok else 1


# ---------------------------------------------------------------- profile

def kernel_stats(trace_dir: Path, before: set) -> tuple[collections.Counter, collections.Counter]:
    """Launches and GPU microseconds per kernel name in the newest trace of
    trace_dir not in `before`."""
    new = sorted((p for p in trace_dir.glob("*.json") if p not in before),
                 key=lambda p: p.stat().st_mtime)
    if not new:
        raise RuntimeError(f"no profiler trace written to {trace_dir}")
    launches, us = collections.Counter(), collections.Counter()
    for e in json.loads(new[-1].read_text()).get("traceEvents", []):
        if e.get("cat") == "kernel":
            launches[e["name"]] += 1
            us[e["name"]] += e.get("dur", 0.0)
    return launches, us


def our_kernel_check(model: str, decode: collections.Counter, fusion: bool) -> dict:
    """The fork's decode step (launches per kernel name): our GEMM in every
    projection, our quant (standalone or fused) before each, no upstream FP8
    kernel; `ok` says whether all of it holds."""
    spec = SPECS[model]
    ours = {k: v for k, v in decode.items() if OUR_KERNEL_TAG in k}
    # upstream's FP8 kernels: its CUTLASS GEMMs and its _C quant kernels
    other_fp8 = {k: v for k, v in decode.items() if OUR_KERNEL_TAG not in k and (
        "cutlass" in k or ("vllm" in k and "quant" in k))}
    gemms = sum(v for k, v in ours.items() if "GemmUniversal" in k)
    quants = sum(v for k, v in ours.items() if "quant" in k)   # standalone or fused
    fused = sum(v for k, v in ours.items() if "rms_norm_quant" in k or "silu_and_mul_quant" in k)
    return dict(
        layers=spec.layers, expected_per_step=4 * spec.layers, our_gemm_launches=gemms,
        our_quant_launches=quants, fused_producer_launches=fused,
        standalone_quant_launches=quants - fused, fusion=fusion,
        other_fp8_kernels=other_fp8, our_kernels=ours,
        decode_step_kernels=dict(decode.most_common()),
        # with the fusion pass only o_proj's input (attention output) keeps a standalone quant
        ok=(gemms == 4 * spec.layers and quants == 4 * spec.layers and not other_fp8
            and (not fusion or quants - fused == spec.layers)))


def cmd_profile(args) -> int:
    """One decode step of the compiled, CUDA-graph engine (vLLM's default
    mode), in a torch-profiler trace: the kernels of generating 2 tokens
    minus those of generating 1 (same prompt length, after a warm-up), with
    their GPU time. On the fork's site it checks that our kernels serve every
    projection; on upstream's it records the same step to compare times."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM, SamplingParams

    root, results = Path(args.root), {}
    fork = args.site in ("fork", "plugin")
    if fork:
        from vllm.compilation.passes.fusion.custom_fp8_fusion import fusion_enabled
    fusion = fork and fusion_enabled()
    for model in args.models.split(","):
        trace_dir = Path(args.trace_dir) / model
        trace_dir.mkdir(parents=True, exist_ok=True)
        profiler = dict(profiler="torch", torch_profiler_dir=str(trace_dir),
                        torch_profiler_with_stack=False, torch_profiler_use_gzip=False,
                        torch_profiler_dump_cuda_time_total=False)
        t = time.perf_counter()
        llm = LLM(**engine_kwargs(checkpoint_dir(root, model, args.kind), args.kind,
                                  gpu_memory_utilization=0.3, profiler_config=profiler,
                                  compilation_config={"cudagraph_capture_sizes": [1, 2, 4, 8]}))
        init_s = time.perf_counter() - t
        prompt = {"prompt_token_ids": prompts_for("m8")[0]}

        def generate(n):
            sp = SamplingParams(max_tokens=n, ignore_eos=True, temperature=0.0, detokenize=False)
            return llm.generate([prompt], sp, use_tqdm=False)

        generate(4)
        counts, us = {}, {}
        for n in (1, 2):
            before = set(trace_dir.glob("*.json"))
            llm.start_profile()
            generate(n)
            llm.stop_profile()
            counts[n], us[n] = kernel_stats(trace_dir, before)
        decode = counts[2] - counts[1]
        # the extra launches' time: signed, over the kernels launched more often
        # (a plain Counter subtraction would keep only positive noise)
        decode_us = collections.Counter({k: us[2][k] - us[1][k] for k in decode})
        timing = dict(decode_step_gpu_us=round(sum(decode_us.values()), 1),
                      decode_step_kernel_us={k: round(v, 1) for k, v in decode_us.most_common()})
        results[model] = dict(kind=args.kind, init_s=round(init_s, 1), **timing,
                              **(our_kernel_check(model, decode, fusion) if fork else {}))
        print("E2E profile", model, json.dumps({k: v for k, v in results[model].items()
                                                if not k.startswith("decode_step_k")})[:3000],
              flush=True)
        # after each model, so that a stage cut by its time cap keeps what finished
        Path(args.out).write_text(json.dumps(results, indent=1))
        del llm
        release_engine_memory()
    return 0 if not fork or all(r["ok"] for r in results.values()) else 1


# ---------------------------------------------------------------- load

def rss_bytes(pid: int) -> int:
    """Resident memory of PID and its descendants (the API server, the
    engine core), from /proc."""
    children = collections.defaultdict(list)
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children[ppid].append(int(p.name))
            except (OSError, IndexError, ValueError):
                pass
    total, todo = 0, [pid]
    while todo:
        q = todo.pop()
        todo += children.get(q, [])
        try:
            for line in Path(f"/proc/{q}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def server_state(base: str, session) -> dict:
    """KV-cache usage and queue lengths (/metrics), the engine's allocator
    statistics (/collective_rpc -> tools/gpu/e2e_worker.py)."""
    metrics = {}
    for line in session.get(base + "/metrics", timeout=10).text.splitlines():
        for name in ("vllm:kv_cache_usage_perc", "vllm:num_requests_running",
                     "vllm:num_requests_waiting"):
            if line.startswith(name + "{") or line.startswith(name + " "):
                metrics[name] = float(line.rsplit(" ", 1)[1])
    rpc = session.post(base + "/collective_rpc", json={"method": "custom_fp8_memory_stats"},
                       timeout=30)
    allocator = rpc.json()["results"][0] if rpc.status_code == 200 else {"error": rpc.text[:300]}
    return dict(metrics=metrics, allocator=allocator)


def wait_healthy(base: str, session, pid: int, wait: float) -> float:
    t0 = time.time()
    while time.time() - t0 < wait:
        try:
            os.kill(pid, 0)
        except OSError:
            raise RuntimeError("the server exited before it became healthy")
        try:
            if session.get(base + "/health", timeout=2).status_code == 200:
                return time.time() - t0
        except Exception:
            pass
        time.sleep(1)
    raise RuntimeError(f"the server was not healthy after {wait} s")


def cmd_load(args) -> int:
    """The completions check (one request), then ARGS.requests requests with
    ARGS.concurrency in flight (random token-id prompts of 32-512 tokens,
    16-128 output tokens): errors, latency percentiles, and memory before and
    after (allocator statistics, KV usage back to zero, host RSS)."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    base = f"http://127.0.0.1:{args.port}"
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=args.concurrency + 4)
    session.mount("http://", adapter)
    ready_s = wait_healthy(base, session, args.server_pid, args.wait)
    model = session.get(base + "/v1/models", timeout=10).json()["data"][0]["id"]
    body = {"model": model, "prompt": list(range(1000, 1128)), "max_tokens": 32,
            "ignore_eos": True, "temperature": 0.0, "return_token_ids": True}
    first = session.post(base + "/v1/completions", json=body, timeout=120)
    check = dict(status=first.status_code, response=first.json() if first.ok else first.text[:500])
    print("E2E serve check", json.dumps(check)[:1500], flush=True)
    before = server_state(base, session)
    rss_before = rss_bytes(args.server_pid)

    rng = random.Random(7)
    jobs = [([rng.randrange(3, VOCAB) for _ in range(rng.randint(32, 512))], rng.randint(16, 128))
            for _ in range(args.requests)]
    errors, latencies, lock = collections.Counter(), [], threading.Lock()

    def one(job):
        prompt, n = job
        t = time.perf_counter()
        try:
            r = session.post(base + "/v1/completions", timeout=300, json={
                "model": model, "prompt": prompt, "max_tokens": n, "ignore_eos": True,
                "temperature": 0.8, "return_token_ids": True})
            dt = time.perf_counter() - t
            if r.status_code != 200:
                err = f"HTTP {r.status_code}"
            elif len(r.json()["choices"][0].get("token_ids") or []) != n:
                err = "wrong number of tokens"
            else:
                err = None
        except Exception as e:
            dt, err = time.perf_counter() - t, type(e).__name__
        with lock:
            latencies.append(dt)
            if err:
                errors[err] += 1

    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(one, jobs))
    wall = time.perf_counter() - t0
    time.sleep(2)  # the engine frees the last requests' blocks after their responses
    after = server_state(base, session)
    lat = sorted(latencies)
    result = dict(
        ready_after_s=round(ready_s, 1), check=check, requests=args.requests,
        concurrency=args.concurrency, wall_s=round(wall, 2), errors=dict(errors),
        error_count=sum(errors.values()), requests_per_s=round(args.requests / wall, 2),
        out_tokens=sum(n for _, n in jobs), out_tok_s=round(sum(n for _, n in jobs) / wall, 1),
        latency_s={"p50": round(statistics.median(lat), 3),
                   "p99": round(lat[min(len(lat) - 1, math.ceil(0.99 * len(lat)) - 1)], 3),
                   "max": round(lat[-1], 3)},
        before=before, after=after, host_rss_bytes={"before": rss_before,
                                                    "after": rss_bytes(args.server_pid)})
    Path(args.out).write_text(json.dumps(result, indent=1))
    print("E2E load", json.dumps(result)[:3000], flush=True)
    kv_after = after["metrics"].get("vllm:kv_cache_usage_perc")
    return 0 if check["status"] == 200 and not errors and kv_after == 0.0 else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("checkpoints")
    c.add_argument("--root", required=True)
    f = sub.add_parser("fidelity")
    f.add_argument("--root", required=True)
    f.add_argument("--site", required=True, help="a label: upstream, fork or plugin")
    f.add_argument("--variants", default="auto", help="auto, control, disabled, torch, triton")
    f.add_argument("--models", default=",".join(SPECS))
    f.add_argument("--kinds", default=",".join(KINDS))
    f.add_argument("--budget", type=float, default=1e9, help="seconds; later engines are skipped")
    f.add_argument("--out", required=True)
    r = sub.add_parser("fidelity-report")
    r.add_argument("--upstream", required=True)
    r.add_argument("--fork", required=True)
    r.add_argument("--out", required=True)
    pr = sub.add_parser("profile")
    pr.add_argument("--root", required=True)
    pr.add_argument("--models", default=",".join(SPECS))
    pr.add_argument("--kind", default="fp8", choices=KINDS)
    pr.add_argument("--site", default="fork", choices=["fork", "plugin", "upstream"])
    pr.add_argument("--trace-dir", default="/tmp/e2e-traces")
    pr.add_argument("--out", required=True)
    ld = sub.add_parser("load")
    ld.add_argument("--port", type=int, default=8000)
    ld.add_argument("--server-pid", type=int, required=True)
    ld.add_argument("--wait", type=float, default=240)
    ld.add_argument("--requests", type=int, default=1000)
    ld.add_argument("--concurrency", type=int, default=64)
    ld.add_argument("--out", required=True)
    args = p.parse_args()
    return {"checkpoints": cmd_checkpoints, "fidelity": cmd_fidelity,
            "fidelity-report": cmd_fidelity_report, "profile": cmd_profile,
            "load": cmd_load}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
