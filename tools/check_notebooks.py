"""Prove that each chapters/NN-name.ipynb is its .md source, executed once, cleanly.

For every source given: the .ipynb must exist, its cells (type and source) must equal the .md's,
its code cells must carry execution counts exactly 1..N (one clean top-to-bottom run, nothing
unexecuted, so nbval compares every cell), and no cell may hold an error output unless it is
tagged ``raises-exception``, and no text output may print a float64 round-off-level number
(``1.1e-16``, ``0.0e+00``): its digits differ between CPUs, so print it with
``checks.show_gap`` (``< 1e-12``) instead. Exit status 1 lists every problem found.

Usage: python tools/check_notebooks.py chapters/*.md
"""
import re
import sys
from pathlib import Path

import jupytext
import nbformat


# 1e-13 .. 1e-17 is float64 round-off near unit scale; 0.0e+00 is a gap that happened to vanish.
ROUNDOFF = re.compile(r"\b\d\.\d+e-1[3-7]\b|\b0\.0+e[+-]00\b")


def _texts(cell):
    for out in cell.get("outputs", []):
        yield out.get("text", "")
        yield "".join(out.get("data", {}).get("text/plain", ""))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def check(md_path):
    md_path = Path(md_path)
    nb_path = md_path.with_suffix(".ipynb")
    if not nb_path.exists():
        return [f"{nb_path}: missing (run `make execute NB={md_path}`)"]
    problems = []
    text = jupytext.read(md_path)
    stored = nbformat.read(nb_path, as_version=4)
    a, b = _cells(text), _cells(stored)
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        problems.append(f"{nb_path}: inputs differ from {md_path.name} (first at cell {first}); "
                        f"run `make execute NB={md_path}`")
    code = [c for c in stored.cells if c.cell_type == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"{nb_path}: execution counts {counts[:8]}... are not 1..{len(code)}: "
                        "not one clean run")
    for i, c in enumerate(code, 1):
        tags = c.get("metadata", {}).get("tags", [])
        if any(o.get("output_type") == "error" for o in c.get("outputs", [])) \
                and "raises-exception" not in tags:
            problems.append(f"{nb_path}: code cell {i} stored an error without the "
                            "raises-exception tag")
    for i, c in enumerate(code, 1):
        hit = next((m.group(0) for t in _texts(c) for m in [ROUNDOFF.search(t)] if m), None)
        if hit:
            problems.append(f"{nb_path}: code cell {i} prints the round-off-level number {hit}, "
                            "whose digits differ between CPUs: print it with checks.show_gap")
    if not code:
        problems.append(f"{nb_path}: no code cells: nbval would compare nothing")
    return problems


def main(argv):
    sources = [p for p in argv if p.endswith(".md")]
    if not sources:
        print("check_notebooks: no notebook sources given")
        return 1
    problems = [p for src in sources for p in check(src)]
    for p in problems:
        print(p)
    print(f"check_notebooks: {len(sources)} notebooks, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
