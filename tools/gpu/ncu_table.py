#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The metrics of `tools/gpu/run.sh ncu` a row per GEMM case, here:

    python3 tools/gpu/ncu_table.py ncu.csv ncu_cases.txt [REGEX ...]

ncu.csv is ncu's raw page (a header row, a units row, then a row per
kernel in launch order), ncu_cases.txt the "case i: name" lines of
tools/gpu/ncu_gemm.py in the same order. Prints the kernel time and every
metric whose name matches one of the regular expressions (default: the
tensor pipe, HBM and L2 throughput, and the warp stall reasons that take
more than 5% of the issue-active cycles).
"""

import csv
import re
import sys

DEFAULT = [r"^gpu__time_duration\.sum$", r"gmma|pipe_tensor", r"^dram__throughput\.avg\.pct",
           r"^lts__throughput\.avg\.pct", r"issue_stalled_.*_per_issue_active\.ratio$"]
STALL_FLOOR = 0.05  # a stall column is shown where some case reaches it


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__)
        return 2
    rows = list(csv.reader(open(argv[0])))
    header, units, kernels = rows[0], rows[1], rows[2:]
    names = [line.split(": ", 1)[1].strip() for line in open(argv[1]) if line.startswith("case ")]
    if len(names) != len(kernels):
        print(f"{len(kernels)} kernels but {len(names)} cases: the rows do not pair up")
        return 1
    patterns = [re.compile(p) for p in (argv[2:] or DEFAULT)]
    cols = [i for i, h in enumerate(header) if any(p.search(h) for p in patterns)]

    def number(row, i):
        try:
            return float(row[i].replace(",", ""))
        except ValueError:
            return None

    cols = [i for i in cols if "issue_stalled" not in header[i]
            or any((number(r, i) or 0) >= STALL_FLOOR for r in kernels)]
    for name, row in zip(names, kernels):
        print(name)
        for i in cols:
            print(f"    {header[i]:80s} {row[i]:>12s} {units[i]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
