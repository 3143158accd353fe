# SPDX-License-Identifier: Apache-2.0
"""Turns the tuned table (scaled_mm_h100.json, written by
benchmarks/tune_scaled_mm.py) into the C++ include the dispatch compiles in
(CMakeLists.txt runs this at build time). A missing JSON gives an empty table:
the analytic model then decides alone."""

import json
import sys
from pathlib import Path


def main(json_path: str, out_path: str) -> None:
    src = Path(json_path)
    lines = [f"// Generated from {src.name} by {Path(__file__).name}; do not edit."]
    if src.exists():
        for e in sorted(json.loads(src.read_text())["entries"],
                        key=lambda e: (e["n"], e["k"], e["m"])):
            lines.append(f'{{{e["n"]}, {e["k"]}, {e["m"]}, "{e["config"]}"}},')
    Path(out_path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
