# SPDX-License-Identifier: Apache-2.0
"""Turns the tuned tables (scaled_mm_<gpu>.json, one per GPU, written by
benchmarks/tune_scaled_mm.py) into the C++ include the dispatch compiles in
(CMakeLists.txt runs this at build time): one entry array per table and
kTunedTables, which names the CUDA device each was measured on. The dispatch
uses a table only on a device of that name; elsewhere, or with no table, the
analytic model decides alone.

    python gen_table.py OUT.inc [TABLE.json ...]
"""

import json
import sys
from pathlib import Path


def main(out_path: str, *json_paths: str) -> None:
    tables = sorted(Path(p) for p in json_paths)
    lines = [f"// Generated from {', '.join(t.name for t in tables) or 'no table'} "
             f"by {Path(__file__).name}; do not edit."]
    devices = []
    for i, table in enumerate(tables):
        spec = json.loads(table.read_text())
        lines.append(f"constexpr TunedEntry kTuned{i}[] = {{  // {table.name}")
        for e in sorted(spec["entries"], key=lambda e: (e["n"], e["k"], e["m"])):
            lines.append(f'    {{{e["n"]}, {e["k"]}, {e["m"]}, "{e["config"]}"}},')
        lines.append("};")
        devices.append(f'    {{"{spec["device"]}", kTuned{i}, std::size(kTuned{i})}},')
    lines += ["constexpr TunedTable kTunedTables[] = {", *devices,
              "    {nullptr, nullptr, 0},  // the end (and no table at all)", "};"]
    Path(out_path).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
