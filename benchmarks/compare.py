# SPDX-License-Identifier: Apache-2.0
"""Lists every point of a new bench_fp8_linear.py JSON that got more than 5%
slower than in the committed one (informational; no timing asserts anywhere).

    python benchmarks/compare.py benchmarks/results/h100.json new.json [--methods ours_cuda_token]
"""

import argparse
import json
from pathlib import Path

THRESHOLD = 1.05


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


if __name__ == "__main__":
    main()
