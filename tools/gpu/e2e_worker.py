# SPDX-License-Identifier: Apache-2.0
"""A vLLM worker extension for the served-load check (tools/gpu/e2e.py load):
`vllm serve --worker-extension-cls e2e_worker.MemoryStats` with
VLLM_SERVER_DEV_MODE=1 lets the client read the engine's CUDA allocator
statistics through POST /collective_rpc {"method": "custom_fp8_memory_stats"}."""

import torch

KEYS = ("allocated_bytes.all.current", "allocated_bytes.all.peak", "reserved_bytes.all.current",
        "num_alloc_retries", "num_ooms", "active.all.current")


class MemoryStats:
    def custom_fp8_memory_stats(self) -> dict:
        torch.cuda.synchronize()
        stats = torch.cuda.memory_stats()
        return {k: stats.get(k) for k in KEYS}
