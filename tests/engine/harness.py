# SPDX-License-Identifier: Apache-2.0
"""Runs the (patched) vLLM engine in-process on a checkpoint and returns plain
data: the kernel-selection log lines, each FP8 layer's kernel and activation
quant key, per-layer counts of our kernel calls and of the torch.ops._custom_fp8
ops they ran, and the full teacher-forced prompt logprobs.

The engine never escapes run_engine(): it is created, used and deleted there,
so several engines run one after another in one process.
"""

import collections
import contextlib
import gc
import importlib
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

FORK_KERNELS_MODULE = "vllm.model_executor.kernels.linear.scaled_mm.custom_fp8"
PLUGIN_GROUP, PLUGIN_NAME = "vllm.general_plugins", "custom_fp8"  # pyproject.toml
OP_NAMESPACE = "_custom_fp8"
SELECTED_MSG = "Selected %s for %s"

# In-process engine (shared/notes/vllm-cpu-engine.md): no EngineCore/worker
# processes, 1 GiB of KV cache.
ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_KVCACHE_SPACE": "1"}
ENGINE_ARGS = dict(distributed_executor_backend="uni", skip_tokenizer_init=True,
                   max_model_len=256, max_logprobs=-1, seed=0)


def plugin_mode() -> bool:
    """The fork's kernels come from the plugin wheel on a stock vLLM (its
    entry point is installed and vllm._custom_ops lacks patch 0001's
    wrappers), not from the patched fork."""
    from importlib.metadata import entry_points

    from vllm import _custom_ops

    installed = any(ep.name == PLUGIN_NAME for ep in entry_points(group=PLUGIN_GROUP))
    return installed and not hasattr(_custom_ops, "custom_fp8_scaled_fp8_quant")


def load_plugin() -> None:
    """What vLLM does before it builds an engine (EngineArgs): call every
    general plugin's register(), ours included in plugin mode, once per
    process. Tests that select kernels without an engine call it first."""
    from vllm.plugins import load_general_plugins

    load_general_plugins()


def fork_missing_reason(cpu_only: bool = True) -> str | None:
    """Why the fork's kernels cannot run here, patched in or as the plugin
    (on vLLM's CPU platform unless not CPU_ONLY), or None when they can."""
    try:
        from vllm import LLM  # noqa: F401
    except Exception as e:  # ImportError, or the OSError of a broken CUDA wheel
        return f"vllm is not importable ({type(e).__name__}: {e}); build the engine venv " \
               f"with tools/make_engine_venv.sh"
    try:
        importlib.import_module(FORK_KERNELS_MODULE)
    except ImportError as e:
        return f"vllm is neither the patched fork nor has the plugin ({FORK_KERNELS_MODULE} " \
               f"is missing: {e}); apply it with tools/fork.py apply --into or install the " \
               f"plugin wheel (tools/make_engine_venv.sh [--plugin])"
    from vllm.platforms import current_platform
    if cpu_only and not current_platform.is_cpu():
        return f"the engine tests run on vLLM's CPU platform (vllm-cpu), not " \
               f"{type(current_platform).__name__}"
    return None


# ------------------------------------------------------------------ logging

@dataclass
class LogLine:
    msg: str        # the format string, e.g. "Selected %s for %s"
    args: tuple     # its arguments, as strings
    message: str    # the formatted message


class _Records(logging.Handler):
    """Keeps each record's text only. A LogRecord with exc_info (vLLM logs
    e.g. its "Chat template warmup failed" traceback) holds the frames of
    LLM.__init__ and so the whole engine: kept, it would stop the engine's
    memory (its 1 GiB KV cache) from being freed when the test drops it."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[LogLine] = []

    def emit(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        self.records.append(LogLine(str(record.msg), tuple(str(a) for a in args),
                                    record.getMessage()))


@contextlib.contextmanager
def vllm_log_records():
    """Collect every record of the "vllm" logger tree.

    vLLM applies its logging dictConfig again when an engine is created, which
    drops handlers that others attached to "vllm" (and clears them on its
    child loggers), so the handler is attached again after each
    reconfiguration. *_once messages are deduplicated per process: their
    caches are cleared so each engine logs its own selection lines. Where
    no engine has configured vLLM's logging yet, INFO records are let through
    for the duration.
    """
    import vllm.logger as vlog

    handler = _Records()
    root = logging.getLogger("vllm")
    original = vlog._configure_vllm_root_logger

    def reconfigure(*args, **kwargs):
        original(*args, **kwargs)
        if handler not in root.handlers:
            root.addHandler(handler)

    for cached in ("_print_debug_once", "_print_info_once", "_print_warning_once"):
        getattr(vlog, cached).cache_clear()
    vlog._configure_vllm_root_logger = reconfigure
    root.addHandler(handler)
    level = root.level
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield handler.records
    finally:
        vlog._configure_vllm_root_logger = original
        root.removeHandler(handler)
        root.setLevel(level)


def selected_kernels(records) -> list[tuple[str, str]]:
    """(kernel class, quant method class) of each "Selected %s for %s" line."""
    return [r.args for r in records if r.msg == SELECTED_MSG and len(r.args) == 2]


# ------------------------------------------------------ per-layer op counts

class _OpCounter(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == OP_NAMESPACE:
            self.ops[func._opname] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def count_projection_calls():
    """Count, per linear layer (its vLLM prefix, e.g.
    "model.layers.0.self_attn.qkv_proj"), the calls of our kernel classes'
    apply_weights and the torch.ops._custom_fp8 ops each call dispatched
    (a TorchDispatchMode entered inside the call, in the thread that runs it).
    Eager mode only: under torch.compile the wrapper would be traced."""
    mod = importlib.import_module(FORK_KERNELS_MODULE)
    classes = (mod.CustomFp8ScaledMMLinearKernel, mod.CustomFp8BlockScaledMMKernel)
    counts: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    lock = threading.Lock()
    originals = {cls: cls.__dict__["apply_weights"] for cls in classes}

    def wrap(cls, original):
        def apply_weights(self, layer, x, *args, **kwargs):
            with _OpCounter() as ops:
                out = original(self, layer, x, *args, **kwargs)
            name = getattr(layer, "prefix", None) or f"<unnamed {type(layer).__name__}>"
            with lock:
                counts[name][cls.__name__] += 1
                counts[name].update(ops.ops)
            return out
        return apply_weights

    for cls, original in originals.items():
        cls.apply_weights = wrap(cls, original)
    try:
        yield counts
    finally:
        for cls, original in originals.items():
            cls.apply_weights = original


# ------------------------------------------------------------- the engine

@dataclass
class FP8Layer:
    name: str
    kernel: str
    activation_quant_key: object  # vLLM's QuantKey
    weight_dtype: torch.dtype


@dataclass
class EngineRun:
    selected: list[tuple[str, str]]          # from the "Selected %s for %s" log lines
    layers: list[FP8Layer]                   # every layer with an FP8 kernel
    linear_layers: list[str]                 # every linear layer of the model
    calls: dict[str, collections.Counter]    # per layer prefix (eager runs only)
    logprobs: list[torch.Tensor]             # per prompt: [T - 1, vocab] float64
    log_messages: list[str] = field(default_factory=list)


def _fp8_kernel(module):
    for owner in (getattr(module, "quant_method", None), getattr(module, "scheme", None)):
        kernel = getattr(owner, "fp8_linear", None)
        if kernel is not None:
            return kernel
    return None


def describe_model(model):
    from vllm.model_executor.layers.linear import LinearBase

    fp8, linear = [], []
    for name, module in model.named_modules():
        if isinstance(module, LinearBase):
            linear.append(name)
        kernel = _fp8_kernel(module)
        if kernel is not None:
            fp8.append(FP8Layer(name, type(kernel).__name__,
                                kernel.config.activation_quant_key, module.weight.dtype))
    return fp8, linear


def prompt_logprobs_matrix(output, vocab: int) -> torch.Tensor:
    """Full-vocabulary prompt logprobs of one request as [T - 1, vocab]:
    row t - 1 is log p(. | tokens[:t]) (position 0 has none)."""
    rows = output.prompt_logprobs[1:]
    out = torch.full((len(rows), vocab), float("nan"), dtype=torch.float64)
    for t, row in enumerate(rows):
        ids = list(row.keys())
        out[t, ids] = torch.tensor([lp.logprob for lp in row.values()], dtype=torch.float64)
    if out.isnan().any():
        raise AssertionError("the engine returned fewer prompt logprobs than the vocabulary")
    return out


def run_engine(path: Path, prompts: list[list[int]], *, quantization: str | None = None,
               enforce_eager: bool = True, count_calls: bool = True,
               **engine_kwargs) -> EngineRun:
    """Start an in-process engine on PATH, score PROMPTS teacher-forced
    (prompt_logprobs over the full vocabulary), and shut it down."""
    import vllm.envs
    from vllm import LLM, SamplingParams

    for key, value in ENGINE_ENV.items():
        os.environ.setdefault(key, value)
    vllm.envs.disable_envs_cache()  # a previous engine froze the env (VLLM_CACHE_ROOT...)
    with vllm_log_records() as records:
        llm = LLM(model=str(path), quantization=quantization, enforce_eager=enforce_eager,
                  **{**ENGINE_ARGS, **engine_kwargs})
        messages = [r.message for r in records]
        selected = selected_kernels(records)
    try:
        vocab = llm.llm_engine.model_config.get_vocab_size()
        [(layers, linear)] = llm.apply_model(describe_model)
        params = SamplingParams(max_tokens=1, prompt_logprobs=-1, detokenize=False)
        requests = [{"prompt_token_ids": p} for p in prompts]
        if count_calls:
            with count_projection_calls() as calls:
                outputs = llm.generate(requests, params, use_tqdm=False)
            calls = {k: collections.Counter(v) for k, v in calls.items()}
        else:
            outputs, calls = llm.generate(requests, params, use_tqdm=False), {}
        logprobs = [prompt_logprobs_matrix(o, vocab) for o in outputs]
    finally:
        del llm
        gc.collect()
    return EngineRun(selected, layers, linear, calls, logprobs, messages)
