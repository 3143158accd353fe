# SPDX-License-Identifier: Apache-2.0
"""Lists every point of a new bench_fp8_linear.py JSON that got more than 5%
slower than in the committed one, then the speed-up (old time / new time) of
each method per M range, as geometric mean and range (informational; no
timing asserts anywhere).

    python benchmarks/compare.py benchmarks/results/h100.json new.json [--methods ours_cuda_token]
"""

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

THRESHOLD = 1.05
M_RANGES = ((1, 64), (128, 512), (1024, 1 << 30))


def times(path: str, methods) -> dict:
    rows = json.loads(Path(path).read_text())["rows"]
    return {(r["model"], r["proj"], r["tp"], r["m"], r["method"]): r["t_graph_us"]
            for r in rows if not methods or r["method"] in methods}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("--methods", nargs="+", help="only these methods (default: all)")
    args = p.parse_args()
    old, new = times(args.old, args.methods), times(args.new, args.methods)
    slower = sorted((new[k] / old[k], k) for k in old.keys() & new.keys()
                    if new[k] > THRESHOLD * old[k])
    for ratio, (model, proj, tp, m, method) in reversed(slower):
        print(f"{ratio:5.2f}x slower  {model} {proj} tp{tp} M={m} {method}: "
              f"{old[(model, proj, tp, m, method)]:.1f} -> {new[(model, proj, tp, m, method)]:.1f} us")
    print(f"{len(slower)} of {len(old.keys() & new.keys())} common points got more than "
          f"{100 * (THRESHOLD - 1):.0f}% slower")
    speedups = defaultdict(list)  # (method, M range) -> [old / new]
    for key in old.keys() & new.keys():
        m, method = key[3], key[4]
        lo, hi = next(r for r in M_RANGES if r[0] <= m <= r[1])
        speedups[(method, f"M {lo}-{hi}" if hi < 1 << 30 else f"M >= {lo}")].append(
            old[key] / new[key])
    for (method, m_range), s in sorted(speedups.items()):
        print(f"{method} {m_range}: {statistics.geometric_mean(s):.3f}x "
              f"({min(s):.2f}-{max(s):.2f}, {len(s)} points)")


if __name__ == "__main__":
    main()
