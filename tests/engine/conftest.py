# SPDX-License-Identifier: Apache-2.0
"""Session fixtures of the engine tests: checkpoints written once, prompts,
float64 reference logprobs and engine runs, each computed once per session."""

import os

import pytest
import torch

from . import checkpoints, fidelity, harness

for _key, _value in harness.ENGINE_ENV.items():
    os.environ.setdefault(_key, _value)

MODELS = tuple(checkpoints.MODELS)
# Teacher-forced prompts: random token ids (not 0-2, the special ids), mixed lengths.
PROMPT_LENGTHS = (33, 47, 64, 72, 56, 81)


class _Memo:
    """make(*key), computed once per key. A failure is remembered too: later
    calls fail at once with its text (an engine that failed to start is not
    started again by every test that needs it)."""

    def __init__(self, make):
        self._make, self._done, self._failed = make, {}, {}

    def __call__(self, *key):
        if key in self._failed:
            pytest.fail(f"{key} failed in an earlier test: {self._failed[key]}")
        if key not in self._done:
            try:
                self._done[key] = self._make(*key)
            except Exception as e:
                self._failed[key] = f"{type(e).__name__}: {e}"
                raise
        return self._done[key]


@pytest.fixture(scope="session", autouse=True)
def fork_kernels_registered():
    """Plugin mode: our classes join vLLM's lists when vLLM loads its general
    plugins (register()), which an engine does but a test that selects
    kernels directly does not. A no-op for the patched fork."""
    if harness.fork_missing_reason() is None:
        harness.load_plugin()


@pytest.fixture(scope="session")
def prompts() -> list[list[int]]:
    g = torch.Generator().manual_seed(1234)
    return [torch.randint(3, checkpoints.ModelSpec.vocab, (n,), generator=g).tolist()
            for n in PROMPT_LENGTHS]


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory):
    """checkpoint(model, kind) -> its directory, written once per session
    ("bf16" and "online" share the bf16 checkpoint)."""
    root = tmp_path_factory.mktemp("engine-checkpoints")
    memo = _Memo(lambda model, kind: checkpoints.write_model(root, model, kind))
    return lambda model, kind: memo(model, "bf16" if kind == "online" else kind)


@pytest.fixture(scope="session")
def reference(checkpoint, prompts):
    """reference(model, kind) -> fidelity.Reference: float64 logprobs per prompt."""
    return _Memo(lambda model, kind: fidelity.make_reference(checkpoint(model, kind), prompts))


@pytest.fixture(scope="session")
def engine_run(checkpoint, prompts):
    """engine_run(model, kind) -> harness.EngineRun of the eager engine
    ("bf16": the bf16 checkpoint unquantized, the control)."""
    def run(model, kind):
        return harness.run_engine(checkpoint(model, kind), prompts,
                                  **checkpoints.engine_kwargs(kind))
    return _Memo(run)


@pytest.fixture(scope="session")
def bf16_floor(engine_run, reference):
    """The bf16 control's error against the reference, per model."""
    return _Memo(lambda model: fidelity.compare(engine_run(model, "bf16").logprobs,
                                                reference(model, "bf16")))


# ------------------------------------------------ measured errors, printed

_FIDELITY: list[tuple[str, "fidelity.Fidelity", "fidelity.Tolerance"]] = []


def record_fidelity(label: str, measured, tolerance) -> None:
    _FIDELITY.append((label, measured, tolerance))


def pytest_terminal_summary(terminalreporter):
    if not _FIDELITY:
        return
    tr = terminalreporter
    tr.section("engine vs float64 reference (mean |dlogprob| over ref top-%d, top-1 agreement)"
               % fidelity.TOP_K)
    for label, f, t in _FIDELITY:
        verdict = "FAILS check" if t.check(f) else "passes"
        tr.write_line(f"{label:45s} {f.mean_abs_dlogp:.4f} (<= {t.max_mean_abs_dlogp:.4f})  "
                      f"top-1 {f.top1_agreement:.3f} (>= {t.min_top1_agreement:.3f})  {verdict}")
        tr.write_line(f"{'':45s} {t.how}")
