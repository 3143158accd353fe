// Which sm_90a scaled-GEMM configuration runs for a shape, and how the
// split-K one splits K: the tuned table of this GPU
// (tuned/scaled_mm_<gpu>.json, measured by
// benchmarks/tune_scaled_mm.py) for the shapes it covers, else an analytic
// model of how the tiles fill the GPU. Host code only.
#include <array>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <mutex>

#include <cuda_runtime.h>

#include "own_gemm_dispatch_sm90.h"
#include "scaled_mm_sm90.h"
#include "torch_utils.h"

namespace custom_fp8::sm90 {
namespace {

#define CUSTOM_FP8_CONFIG_STRING(name) #name,
constexpr const char* kConfigNames[] = {CUSTOM_FP8_SCALED_MM_CONFIGS(CUSTOM_FP8_CONFIG_STRING)};
#undef CUSTOM_FP8_CONFIG_STRING
constexpr int kNumConfigs = sizeof(kConfigNames) / sizeof(kConfigNames[0]);

struct TunedEntry {
  int64_t n, k, m;  // the configuration measured fastest for M up to m
  const char* config;
};
struct TunedTable {
  const char* device;  // the CUDA device name it was measured on
  const TunedEntry* entries;
  size_t size;
};
#include "scaled_mm_tuned.inc"  // kTunedTables, ended by a null device

int config_id(const char* name) {
  for (int i = 0; i < kNumConfigs; ++i)
    if (std::strcmp(kConfigNames[i], name) == 0) return i;
  STD_TORCH_CHECK(false, "custom_fp8: the tuned table names an unknown configuration ", name);
  return -1;
}

// What the dispatch needs of the current device, read once per device.
struct DeviceInfo {
  int64_t sms = 0;
  TunedTable tuned{nullptr, nullptr, 0};  // size 0: no table measured on this GPU
};

const DeviceInfo& device_info() {
  constexpr int kMaxDevices = 64;
  static std::array<DeviceInfo, kMaxDevices> infos;
  static std::array<std::once_flag, kMaxDevices> read;
  int device = 0;
  cudaGetDevice(&device);
  STD_TORCH_CHECK(device >= 0 && device < kMaxDevices, "custom_fp8: CUDA device ", device,
                  " out of range");
  std::call_once(read[device], [device] {
    cudaDeviceProp prop;
    cudaGetDeviceProperties(&prop, device);
    infos[device].sms = prop.multiProcessorCount;
    for (const TunedTable* t = kTunedTables; t->device != nullptr; ++t)
      if (std::strcmp(t->device, prop.name) == 0) infos[device].tuned = *t;
  });
  return infos[device];
}

int tuned_config(const TunedTable& table, int64_t m, int64_t n, int64_t k) {
  const TunedEntry* last = nullptr;
  for (size_t i = 0; i < table.size; ++i) {
    const TunedEntry& e = table.entries[i];
    if (e.n != n || e.k != k) continue;
    if (m <= e.m) return config_id(e.config);
    last = &e;  // entries are sorted by m: past the largest, its config holds
  }
  return last ? config_id(last->config) : -1;
}

// The analytic model, for shapes and GPUs without a tuned entry. Fitted to
// the tuned tables: by their timings its choices were within 0.4% (H100) and
// 1.4% (H200) of the tuned ones before the wave GEMM (geometric mean over
// their 240 (N, K, M) points; the model that preceded it was 21% / 26%
// slower, mostly at M <= 256); timed again on the H200, 3.4%
// (benchmarks/results/tune_h200_130d1fd.json). By the H100 table of 30ddc8c
// (M >= 128), 7.0% slower than the tuned choices without its wave rule,
// 3.5% with it.
//  - M <= 64, and M <= 128 while the 64-wide weight tiles fit one wave:
//    swap-AB, data-parallel, 256-deep k-tiles; faster than stream-K even when
//    the tiles leave SMs idle (N = 2304: 36 tiles, 132 SMs);
//  - M <= 128 otherwise: 64 x 128 pingpong tiles;
//  - M <= 256 while 128-wide weight tiles x 64 tokens fit one wave: swap-AB
//    stream-K;
//  - M > 1024 and N >= 2048: the wave GEMM's 128 x 128 tiles in pairs of
//    CTAs (wave_128x128x128_cluster2), 1.07x the CUTLASS tiles below on the
//    H100 (0.94-1.21x over the 64 points at M = 2048-16384 of the 16
//    projection shapes, N = 2304-37888; at M = 1024 0.99x, so no lower);
//  - else 128 x 128 tiles, stream-K when data-parallel waves would leave a
//    third of the SM slots idle (tiles / (waves * SMs) < 2/3).
// No *_promote512 variant: a longer promotion is taken only where a table
// measured it faster. The tuner times this model beside the table (config -2).
int analytic_config(int64_t m, int64_t n, int64_t sms) {
  if (m <= 64 || (m <= 128 && cdiv(m, 64) * cdiv(n, 64) <= sms)) {
    return config_id(m <= 16 ? "swap_64x16x256" : m <= 32 ? "swap_64x32x256" : "swap_64x64x256");
  }
  if (m <= 128) return config_id("tile_64x128x128_pingpong_promote256");
  if (m <= 256 && cdiv(m, 64) * cdiv(n, 128) <= sms)
    return config_id("swap_128x64x128_streamk_promote256");
  if (m > 1024 && n >= 2048) return config_id("wave_128x128x128_cluster2");
  const int64_t tiles = cdiv(m, 128) * cdiv(n, 128);
  const int64_t slots = cdiv(tiles, sms) * sms;
  return config_id(3 * tiles < 2 * slots ? "tile_128x128x128_streamk_promote256"
                                         : "tile_128x128x128_promote256");
}

// The split-K decode kernel (splitk_64xTx128) for M <= 64 tokens: the
// narrowest that holds them.
int splitk_config(int64_t m) {
  return config_id(m <= 8 ? "splitk_64x8x128" : m <= 16 ? "splitk_64x16x128"
                   : m <= 32 ? "splitk_64x32x128" : "splitk_64x64x128");
}

// VLLM_CUSTOM_FP8_SPLITK (read once per process): "1" runs the split-K
// decode kernel at every M <= 64, "0" never (the analytic model's choice
// where a table picks it); unset: the table, else the analytic model.
enum class SplitK { kDispatch, kAlways, kNever };
SplitK splitk_mode() {
  static const SplitK mode = [] {
    const char* v = std::getenv("VLLM_CUSTOM_FP8_SPLITK");
    if (v == nullptr || *v == '\0') return SplitK::kDispatch;
    return std::strcmp(v, "0") == 0 ? SplitK::kNever : SplitK::kAlways;
  }();
  return mode;
}

}  // namespace

int scaled_mm_num_configs() { return kNumConfigs; }

// How many CTAs split K: the fewest that minimize the time of the busiest SM,
// one CTA per SM at a time, each CTA costing its k-blocks plus a fixed
// kCtaCost (set-up, pipeline fill, the reduction). E.g. on 132 SMs: o_proj
// (64 tiles of N = 4096) 2, qkv_proj and gate_up_proj 1. No table: any shape
// fills the GPU.
int64_t device_sms() { return device_info().sms; }

int choose_splitk_splits(int64_t ctas, int64_t k_blocks, int max_splits) {
  constexpr int64_t kCtaCost = 4;  // in k-blocks
  const int64_t sms = device_info().sms;
  int best = 1;
  int64_t best_cost = cdiv(ctas, sms) * (k_blocks + kCtaCost);
  for (int s = 2; s <= max_splits && s <= k_blocks; s *= 2) {
    const int64_t cost = cdiv(ctas * s, sms) * (cdiv(k_blocks, s) + kCtaCost);
    if (cost < best_cost) best = s, best_cost = cost;
  }
  return best;
}

int choose_scaled_mm_config(int64_t m, int64_t n, int64_t k, bool use_tuned) {
  const DeviceInfo& device = device_info();
  const SplitK splitk = splitk_mode();
  if (splitk == SplitK::kAlways && m <= 64) return splitk_config(m);
  const int tuned = use_tuned ? tuned_config(device.tuned, m, n, k) : -1;
  if (tuned >= 0 && !(splitk == SplitK::kNever &&
                      std::strncmp(kConfigNames[tuned], "splitk_", 7) == 0)) {
    return tuned;
  }
  return analytic_config(m, n, device.sms);
}

}  // namespace custom_fp8::sm90
