#!/bin/bash
# The GPU machine's side of a device-tool call: kernel tests and benchmarks.
#
#   run(command="bash tools/gpu/run.sh tests bench-quick",
#       carry=[".carry", "vllm/custom_fp8/_C.abi3.so"], kind="nvidia-h100-x1")
#
# Carried: vllm/custom_fp8/_C.abi3.so (built here: python setup.py build_ext
# --inplace), .carry/e2e/_C_sm90.so.xz (upstream vLLM 0.25.1's _C, from
# tools/gpu-e2e/bundle.sh) and .carry/test-wheels (pytest, which the GPU
# image lacks; tools/gpu/fetch_wheels.sh). Stages, in the order given:
#   tests          the pytest suite on the GPU (engine tests excluded; TESTS=paths
#                  and TESTS_K=<pytest -k expression> narrow it,
#                  CUSTOM_FP8_SMALL_GPU_SUITE=1 skips the largest shapes)
#   bench-quick    benchmarks/bench_fp8_linear.py --preset quick
#   bench-full     benchmarks/bench_fp8_linear.py (BENCH_ARGS adds options;
#                  BENCH_NAME names its JSON and log, default bench)
#   tune           benchmarks/tune_scaled_mm.py -> $OUT/scaled_mm_<gpu>.json
#                  (TUNE_ARGS adds options, e.g. --m 1 8 64)
#   sanitize       tools/gpu/sanitize.py under compute-sanitizer memcheck (full
#                  sweep), racecheck and synccheck (--quick); SANITIZE_TOOLS picks,
#                  SANITIZE_S caps each (seconds)
#   block-smoke    benchmarks/upstream_block.py: JIT-builds and checks upstream's Hopper
#                  block-FP8 default (FlashInfer, DeepGEMM) from .carry/block
#                  (tools/gpu/block_baselines_bundle.sh), which the bench's block group
#                  then times beside ours
#   block-jit      their JIT caches -> $OUT/block_jit.tar.xz (carry it back as
#                  .carry/block/jit.tar.xz: later calls skip the builds)
#   ncu            Nsight Compute over tools/gpu/ncu_gemm.py (one launch per GEMM
#                  case, clocks left alone): $OUT/ncu.csv, every metric of the
#                  sections below a row per kernel, in the order of
#                  $OUT/ncu_cases.txt (tools/gpu/ncu_table.py pairs them)
# Everything lands in $OUT: logs, junit XML, benchmark JSON.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
SITE=/tmp/site-kernels
export PYTHONUNBUFFERED=1 CUSTOM_FP8_COMMIT=${CUSTOM_FP8_COMMIT:-unknown}

{
  echo "== setup $(date -u +%T)"
  [ -d "$SITE" ] || python3 -m pip install -q --no-index --no-deps --target "$SITE" \
      .carry/test-wheels/*.whl
  [ -f /tmp/upstream_C.so ] || xz -dc .carry/e2e/_C_sm90.so.xz > /tmp/upstream_C.so
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$OUT/setup.log"
export PYTHONPATH=$SITE:$PWD VLLM_UPSTREAM_C=/tmp/upstream_C.so
[ -f .carry/block/deep_gemm.tar.xz ] && source tools/gpu/block_env.sh
python3 -c "import vllm.custom_fp8 as c; assert c.CUDA_BACKEND == 'cuda', c.CUDA_BACKEND" \
  || { echo "the CUDA extension did not load"; exit 1; }

for stage in "$@"; do
  echo "== $stage $(date -u +%T)"
  case $stage in
    tests)
      python3 -m pytest ${TESTS:-tests} ${TESTS_K:+-k "$TESTS_K"} -q -m "not engine and not tool" \
          -p no:cacheprovider \
          --junitxml="$OUT/junit.xml" 2>&1 | tee "$OUT/tests.log" | tail -40 ;;
    bench-quick)
      python3 benchmarks/bench_fp8_linear.py --preset quick --out "$OUT/bench_quick.json" \
          2>&1 | tee "$OUT/bench_quick.log" ;;
    bench-full)
      python3 benchmarks/bench_fp8_linear.py ${BENCH_ARGS:-} --out "$OUT/${BENCH_NAME:-bench}.json" \
          2>&1 | tee "$OUT/${BENCH_NAME:-bench}.log" ;;
    tune)
      python3 benchmarks/tune_scaled_mm.py --dir "$OUT" ${TUNE_ARGS:-} \
          2>&1 | tee "$OUT/tune.log" | grep -v "^n=" ;;
    sanitize)
      for tool in ${SANITIZE_TOOLS:-memcheck racecheck synccheck}; do
        [ $tool = memcheck ] && Q= || Q=--quick
        T0=$SECONDS
        timeout ${SANITIZE_S:-300} compute-sanitizer --tool $tool --error-exitcode 1 --print-limit 20 \
            python3 tools/gpu/sanitize.py $Q > /tmp/sanitize_$tool.log 2>&1
        echo "$tool rc=$? in $((SECONDS - T0)) s"
        { echo "== $tool"; cat /tmp/sanitize_$tool.log; } >> "$OUT/sanitize.log"
        grep -E "ERROR SUMMARY|SANITIZE|RACECHECK SUMMARY|Error|error" /tmp/sanitize_$tool.log \
            | head -20; tail -1 /tmp/sanitize_$tool.log
      done ;;
    block-smoke)
      VLLM_C_LIB=$VLLM_UPSTREAM_C python3 benchmarks/upstream_block.py 2>&1 | tee "$OUT/block_smoke.log" ;;
    ncu)
      timeout ${NCU_S:-300} ncu --profile-from-start off --clock-control none -f -o /tmp/gemm \
          --section SpeedOfLight --section ComputeWorkloadAnalysis \
          --section MemoryWorkloadAnalysis --section WarpStateStats --section SchedulerStats \
          python3 tools/gpu/ncu_gemm.py > /tmp/ncu.log 2> "$OUT/ncu_cases.txt"
      echo "ncu rc=$?"; grep "==ERROR==\|==WARNING==" /tmp/ncu.log | head -5
      ncu --import /tmp/gemm.ncu-rep --csv --page raw > "$OUT/ncu.csv"
      echo "$(grep -c "^case" "$OUT/ncu_cases.txt") cases, $(($(wc -l < "$OUT/ncu.csv") - 2)) kernels" ;;
    block-jit)
      tar -C "$BLOCK_CACHE" -cf - . | xz -T0 -6 > "$OUT/block_jit.tar.xz"; ls -la "$OUT/block_jit.tar.xz" ;;
    *) echo "unknown stage $stage"; exit 2 ;;
  esac
done
echo "== done $(date -u +%T)"
