#!/bin/bash
# The fork's vLLM end to end on the GPU machine, through the device tool:
#
#   run(command="bash tools/gpu/e2e.sh fidelity profile serve",
#       carry=[".whl", ".carry"], kind="nvidia-h100-x1")
#
# Builds two vLLM 0.25.1 sites from the carried bundle: /tmp/site (upstream:
# tools/gpu-e2e/device.sh, the trimmed release) and /tmp/site-fork (the same
# plus .carry/fork/vllm_fork.tar.xz from tools/gpu/bundle.sh and our library),
# and, from .carry/plugin, /tmp/site-plugin: upstream's tree plus our plugin
# wheel (plugin mode: stock vLLM, no patched file). E2E_FORK_SITE=plugin makes
# the plugin site the fork side of fidelity and profile (the fusion pass
# through inductor_passes, the plugin's opt-in); throughput takes plugin runs.
# Stages, in the order given (each bounded by what is left of E2E_DEADLINE):
#   fidelity    realistic random checkpoints (tools/gpu/e2e.py), teacher-forced
#               top-20 logprobs: upstream (its kernels + the control pair) and
#               the fork (ours, and switched off: must equal upstream), then the
#               comparison (E2E_FID_MODELS, E2E_FID_KINDS, E2E_FORK_VARIANTS pick;
#               the variants compiled,compiled_fused compare the fusion pass)
#   profile     fork, compiled + CUDA graphs: kernel names and GPU time of one
#               decode step (E2E_PROFILE_UPSTREAM=1: upstream's step too)
#   serve       fork `vllm serve` (CUDA graphs) on the 2-layer Llama FP8
#               checkpoint: one completions check, then 1000 requests / 64 in flight
#   throughput  Llama-3-8B shape, dummy weights, 32 layers: bf16 and FP8 on
#               upstream, FP8 on the fork without and with its fusion pass
#               (tools/gpu-e2e/run_e2e.py, one process each; E2E_RUNS picks),
#               decode 128/512 and prefill 2048/64 at batch 1..256
#   main        the README's main job (tools/run_fork.py) on the fork site
# With .carry/block (tools/gpu/block_baselines_bundle.sh) both sites also get
# DeepGEMM and FlashInfer, as a pip install of vLLM 0.25.1 has them: upstream
# then serves block FP8 with its Hopper default, and the fork hands those
# layers back to it (the fidelity variant custom_fp8 keeps ours).
# Results (JSON, logs) land in $OUT; at most 8 files come back, so each
# stage writes one JSON and its log lines go to stdout. E2E_TP=2 runs every
# engine with tensor_parallel_size=2 (kind nvidia-h100-x2; NCCL with NVLink
# multicast off, as the device docs require: NCCL_NVLS_ENABLE=0).
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/e2e_out}; mkdir -p "$OUT"
DEADLINE=${E2E_DEADLINE:-580}
UPSTREAM=/tmp/site FORK=/tmp/site-fork PLUGIN=/tmp/site-plugin CKPT=/tmp/e2e-ckpt
left() { echo $((DEADLINE - SECONDS)); }
cap() { local l=$(left); echo $(( l - 10 < $1 ? l - 10 : $1 )); }   # seconds a stage may take
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1 HF_HUB_OFFLINE=1 \
       TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false VLLM_USE_FLASHINFER_SAMPLER=0 \
       VLLM_ALLOW_INSECURE_SERIALIZATION=1

OUT=/tmp/e2e_setup bash tools/gpu-e2e/device.sh > /tmp/e2e_setup.log 2>&1 \
  || { cat /tmp/e2e_setup.log; exit 1; }
if [ ! -d "$FORK" ]; then
  cp -a "$UPSTREAM" "$FORK"
  tar -xJf .carry/fork/vllm_fork.tar.xz -C "$FORK"
  cp .carry/fork/_C.abi3.so "$FORK/vllm/custom_fp8/"
fi
if [ ! -d "$PLUGIN" ] && ls .carry/plugin/*.whl > /dev/null 2>&1; then
  cp -a "$UPSTREAM" "$PLUGIN"   # the wheel only adds files to upstream's tree
  python3 -m zipfile -e .carry/plugin/*.whl "$PLUGIN"
fi
grep -v "^INFO\|^DEBUG" /tmp/e2e_setup/setup.log | head -8
BUNDLE=$(cat .carry/fork/BUNDLE_COMMIT 2>/dev/null || echo unknown)
echo "fork bundle built at $BUNDLE; tree at ${CUSTOM_FP8_COMMIT:-unknown}"
[ -n "${CUSTOM_FP8_COMMIT:-}" ] && [ "${BUNDLE%-dirty}" != "$CUSTOM_FP8_COMMIT" ] \
  && echo "WARNING: the fork bundle is not of this commit: rerun tools/gpu/bundle.sh"
PYTHONPATH=$FORK python3 -c "import vllm, vllm.custom_fp8 as c; print('fork', vllm.__file__, 'backend', c.CUDA_BACKEND)"
if [ -f .carry/block/deep_gemm.tar.xz ]; then
  source tools/gpu/block_env.sh
  # DeepGEMM kernels compile on first use instead of for every M at engine start
  export VLLM_DEEP_GEMM_WARMUP=${VLLM_DEEP_GEMM_WARMUP:-skip}
fi
in_site() { local site=$1; shift; PYTHONPATH=$site:$PWD/tools/gpu${BLOCK_SITE:+:$BLOCK_SITE} "$@"; }
# the fork side of fidelity and profile: the patched tree, or stock vLLM + the plugin
if [ "${E2E_FORK_SITE:-fork}" = plugin ]; then
  [ -d "$PLUGIN" ] || { echo "E2E_FORK_SITE=plugin needs .carry/plugin (tools/gpu/bundle.sh)"; exit 1; }
  SIDE=plugin SIDE_SITE=$PLUGIN SIDE_PASS=vllm.custom_fp8.plugin.custom_fp8_fusion_pass
  PYTHONPATH=$PLUGIN python3 -c "import vllm, importlib.metadata as m; print('plugin on vllm', vllm.__version__, [e.value for e in m.entry_points(group='vllm.general_plugins')])"
else
  SIDE=fork SIDE_SITE=$FORK SIDE_PASS=
fi
lines() { grep -E "$1" | grep -v "^DEBUG" | cut -c1-600 | head -${2:-60}; }

for stage in "$@"; do
  L=$(left); echo "== $stage ($(date -u +%T), $L s left)"
  case $stage in
    fidelity)
      [ -d $CKPT ] || in_site $UPSTREAM python3 tools/gpu/e2e.py checkpoints --root $CKPT
      # upstream and the fork (ours + switched off) get half the time left each
      B=$(( (L - 30) / 2 ))
      in_site $UPSTREAM timeout -k 5 $((B + 40)) python3 tools/gpu/e2e.py fidelity --root $CKPT \
          --site upstream --variants auto,control --budget $B --out /tmp/fid_upstream.json \
          --models ${E2E_FID_MODELS:-llama,qwen2} --kinds ${E2E_FID_KINDS:-online,fp8,ct,block,static} \
          > /tmp/fid_upstream.log 2>&1
      echo "upstream rc=$?"; lines "E2E|Error|error" < /tmp/fid_upstream.log
      L=$(left); B=$((L - 60))
      E2E_INDUCTOR_PASS=$SIDE_PASS in_site $SIDE_SITE timeout -k 5 $((B + 40)) python3 tools/gpu/e2e.py fidelity --root $CKPT \
          --site $SIDE --variants ${E2E_FORK_VARIANTS:-auto,disabled} --budget $B \
          --out /tmp/fid_fork.json \
          --models ${E2E_FID_MODELS:-llama,qwen2} --kinds ${E2E_FID_KINDS:-online,fp8,ct,block,static} \
          > /tmp/fid_fork.log 2>&1
      echo "$SIDE rc=$?"; lines "E2E|Error|error" < /tmp/fid_fork.log
      python3 tools/gpu/e2e.py fidelity-report --upstream /tmp/fid_upstream.json \
          --fork /tmp/fid_fork.json --out "$OUT/fidelity.json"
      echo "report rc=$?"
      if [ -n "${E2E_KEEP_RAW:-}" ]; then   # the logprobs themselves (2 more files)
        xz -c /tmp/fid_upstream.json > "$OUT/fid_upstream.json.xz"
        xz -c /tmp/fid_fork.json > "$OUT/fid_fork.json.xz"
      fi ;;
    profile)
      [ -d $CKPT ] || in_site $UPSTREAM python3 tools/gpu/e2e.py checkpoints --root $CKPT
      # E2E_FUSION=0: without the fork's fusion pass (VLLM_CUSTOM_FP8_FUSION);
      # E2E_PROFILE_KIND: the checkpoint kind (fp8; static, block: those fusion patterns)
      # E2E_PROFILE_UPSTREAM=1: then the same step on upstream (profile_upstream.json),
      # to compare the GPU time per kernel
      E2E_INDUCTOR_PASS=$SIDE_PASS VLLM_CUSTOM_FP8_FUSION=${E2E_FUSION:-1} in_site $SIDE_SITE timeout -k 5 $(cap ${E2E_PROFILE_S:-200}) \
          python3 tools/gpu/e2e.py profile --site $SIDE --root $CKPT --kind ${E2E_PROFILE_KIND:-fp8} \
          --out "$OUT/profile.json" > /tmp/profile.log 2>&1
      echo "rc=$?"; lines "E2E|Selected|Error|CUDA graph|cudagraph" < /tmp/profile.log
      if [ -n "${E2E_PROFILE_UPSTREAM:-}" ]; then
        in_site $UPSTREAM timeout -k 5 $(cap ${E2E_PROFILE_S:-200}) python3 tools/gpu/e2e.py profile \
            --site upstream --root $CKPT --kind ${E2E_PROFILE_KIND:-fp8} \
            --out "$OUT/profile_upstream.json" > /tmp/profile_upstream.log 2>&1
        echo "upstream rc=$?"; lines "E2E|Selected|Error" < /tmp/profile_upstream.log
      fi ;;
    serve)
      [ -d $CKPT ] || in_site $UPSTREAM python3 tools/gpu/e2e.py checkpoints --root $CKPT
      VLLM_SERVER_DEV_MODE=1 in_site $FORK python3 -m vllm.entrypoints.cli.main serve \
          $CKPT/llama-fp8 --skip-tokenizer-init --attention-backend TRITON_ATTN \
          --max-model-len 2048 --gpu-memory-utilization 0.5 --port 8000 \
          --worker-extension-cls e2e_worker.MemoryStats --tensor-parallel-size ${E2E_TP:-1} \
          > /tmp/serve.log 2>&1 &
      SPID=$!
      T=$(cap ${E2E_SERVE_S:-220})
      timeout $T python3 tools/gpu/e2e.py load --server-pid $SPID --wait $((T - 60)) \
          --out "$OUT/load.json"
      echo "load rc=$?"
      kill $SPID 2>/dev/null; sleep 3; kill -9 $SPID 2>/dev/null
      lines "Selected|ERROR|Error|Traceback|Uvicorn|graph" 30 < /tmp/serve.log ;;
    throughput)
      MODEL=/tmp/llama3-8b-dummy   # written by tools/gpu-e2e/device.sh
      CONFIGS=${E2E_CONFIGS:-decode:128:512:1,decode:128:512:8,decode:128:512:64,decode:128:512:256,prefill:2048:64:1,prefill:2048:64:8,prefill:2048:64:64,prefill:2048:64:256}
      # fork: the fork without its compiled-mode fusion pass; fork_fused: with it (the
      # default); fork_fused_nopdl: with it, GEMMs launched without PDL; plugin,
      # plugin_fused: stock vLLM + the plugin (.carry/plugin), without and with the pass;
      # a *_splitk run takes the split-K decode GEMM at every M <= 64 (VLLM_CUSTOM_FP8_SPLITK=1)
      for run in ${E2E_RUNS:-upstream:bf16 upstream:fp8 fork:fp8 fork_fused:fp8}; do
        site=${run%%:*} mode=${run##*:} PASS=
        case $site in upstream) S=$UPSTREAM ;; plugin*) S=$PLUGIN PASS=vllm.custom_fp8.plugin.custom_fp8_fusion_pass ;; *) S=$FORK ;; esac
        [[ $site = *_fused* ]] && FUSION=1 || FUSION=0
        [ $site = fork_fused_nopdl ] && PDL=0 || PDL=1
        [[ $site = *_splitk ]] && SPLITK=1 || SPLITK=
        L=$(left); [ $L -lt 120 ] && { echo "skip $run: $L s left"; continue; }
        E2E_INDUCTOR_PASS=$PASS VLLM_CUSTOM_FP8_FUSION=$FUSION VLLM_CUSTOM_FP8_PDL=$PDL \
            VLLM_CUSTOM_FP8_SPLITK=$SPLITK \
            in_site $S timeout -k 5 $((L - 5)) python3 tools/gpu-e2e/run_e2e.py --mode $mode \
            --model-dir $MODEL --configs $CONFIGS --out /tmp/tp_${site}_$mode.json \
            > /tmp/tp_${site}_$mode.log 2>&1
        echo "$run rc=$?"
        lines "E2E_RESULT|Selected|Error|LLM\(\) ready" < /tmp/tp_${site}_$mode.log
      done
      python3 - "$OUT/throughput.json" /tmp/tp_*.json <<'PY'
import json, sys
runs = {}
for path in sys.argv[2:]:
    site_mode = path.rsplit("/", 1)[1][3:-5]   # tp_<site>_<mode>.json
    runs[site_mode] = json.load(open(path))
json.dump(runs, open(sys.argv[1], "w"), indent=1)
PY
      ;;
    main)
      in_site $FORK timeout $((L - 5)) python3 tools/run_fork.py --kind fp8 --attention-backend TRITON_ATTN \
          --log "$OUT/main_vllm.log" ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
echo "== done at $SECONDS s"
