#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""One profiled launch per GEMM case, for Nsight Compute (tools/gpu/run.sh
ncu): where the time goes in kernels that the benchmark can only time.

  - the wave GEMM's configurations beside upstream's FastAccum CUTLASS GEMM
    and our dispatch, at M = 8192 on Llama-3-8B's gate_up_proj and o_proj:
    how busy the tensor pipe is (the warpgroups falling into step leave it
    idle while both promote), the warp stalls, L2 and HBM throughput;
  - block-scaled, the same wave configurations: the block mode is 1.26x
    slower per k-block than per-token (docs/performance.md) and its SASS
    does not say why;
  - the decode GEMM on o_proj at M = 1, 4 and 16, dispatched, forced to the
    configuration the table picks at M = 4 and 16, and upstream's: in the
    bench M = 4 is ~1 us slower than M = 1 and 16, in the tuner it is not.

Run under ncu with --profile-from-start off: each case is built and run
twice, then launched once between cudaProfilerStart and cudaProfilerStop,
so ncu's rows (its ID column) follow the order of the "case i: name" lines
this prints to stderr.
"""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sanitize import DEV, fp8  # noqa: E402  (it puts the repo on sys.path)

import vllm.custom_fp8 as cf8  # noqa: E402
from vllm.custom_fp8._library import (block_scaled_mm_configs, scaled_mm_configs,  # noqa: E402
                                      wave_configs)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_fp8_linear import Upstream  # noqa: E402


def scales(shape, seed):
    g = torch.Generator(DEV).manual_seed(seed)
    return torch.rand(shape, device=DEV, generator=g) * 1e-2 + 1e-3


def cases(upstream):
    """(name, fn) in launch order."""
    names = scaled_mm_configs()

    def ours(a, w, sa, sb, config=-1):  # -1: the dispatch
        return lambda: cf8.scaled_mm(a, w.t(), sa, sb, torch.bfloat16, config=config)

    for proj, n, k in (("gate_up_proj", 28672, 4096), ("o_proj", 4096, 4096)):
        m = 8192
        a, w = fp8(m, k, 1), fp8(n, k, 2)
        sa, sb = scales((m, 1), 3), scales((n,), 4)
        tag = f"{proj} M={m}"
        for c in wave_configs():
            yield f"{tag} {names[c]}", ours(a, w, sa, sb, c)
        yield f"{tag} dispatch", ours(a, w, sa, sb)
        if upstream is not None:
            yield f"{tag} upstream", lambda a=a, w=w, sa=sa, sb=sb: upstream.scaled_mm(
                a, w.t(), sa, sb)
        if proj == "gate_up_proj":  # block-scaled, the same main loop
            sa_block = scales((k // 128, m), 5).t()  # [M, K/128], column-major
            sb_block = scales((n // 128, k // 128), 6).t()  # [K/128, N/128]
            for c, name in enumerate(block_scaled_mm_configs()):
                yield f"{tag} block {name}", lambda a=a, w=w, c=c: cf8.block_scaled_mm(
                    a, w.t(), sa_block, sb_block, torch.bfloat16, config=c)
    n = k = 4096
    w = fp8(n, k, 7)
    sb = scales((n,), 8)
    table_choice = names.index("swap_64x32x256_promote512")
    for m in (1, 4, 16):
        a, sa = fp8(m, k, 9), scales((m, 1), 10)
        tag = f"o_proj M={m}"
        yield f"{tag} dispatch", ours(a, w, sa, sb)
        yield f"{tag} swap_64x32x256_promote512", ours(a, w, sa, sb, table_choice)
        if upstream is not None:
            yield f"{tag} upstream", lambda a=a, sa=sa: upstream.scaled_mm(a, w.t(), sa, sb)


def main():
    path = os.environ.get("VLLM_UPSTREAM_C")
    upstream = Upstream(path) if path else None
    cudart = torch.cuda.cudart()
    for i, (name, fn) in enumerate(cases(upstream)):
        fn()
        fn()
        torch.cuda.synchronize()
        cudart.cudaProfilerStart()
        fn()
        torch.cuda.synchronize()
        cudart.cudaProfilerStop()
        print(f"case {i}: {name}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
