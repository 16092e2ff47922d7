"""Build student copies of the chapter notebooks (an offline stand-in for ``nbgrader generate_assignment``).

    python tools/make_assignments.py [NOTEBOOK ...] [--out build/assignments]

For each notebook (default: every ``chapters/*.ipynb``) it writes ``OUT/<name>.ipynb`` and its
``OUT/<name>.md`` (MyST) twin in which
- every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a solution cell becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the region's indentation
  (a solution cell without a region is replaced whole, as nbgrader does);
- every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region of a check cell is removed;
- outputs and execution counts are cleared; cell metadata is kept, and check cells are marked
  read-only and undeletable (nbgrader's defaults), so nbgrader still recognizes every cell.
A marker outside a solution/check cell, or an unpaired marker, is an error: the tool refuses to
write a copy that could leak a solution. Nothing is executed.
"""
import argparse
import copy
import sys
from pathlib import Path

import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
REPO = Path(__file__).resolve().parents[1]


def nbgrader_meta(cell):
    """The cell's ``nbgrader`` metadata dict ({} when it has none)."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


def is_solution(cell):
    return bool(nbgrader_meta(cell).get("solution", False))


def is_check(cell):
    """An autograded test cell: ``grade: true`` and ``solution: false``."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade", False)) and not meta.get("solution", False)


def is_locked(cell):
    return bool(nbgrader_meta(cell).get("locked", False))


def cell_label(cell, index):
    grade_id = nbgrader_meta(cell).get("grade_id")
    return f"cell {index}" + (f" ({grade_id})" if grade_id else "")


def replace_regions(source, begin, end, stub, *, where):
    """Replace each ``begin``..``end`` line region (markers included) by ``stub`` lines.

    Stub lines get the indentation of the ``begin`` line; ``stub=[]`` deletes the region.
    Returns ``(new_source, number_of_regions)``; an unpaired or nested marker raises ValueError.
    """
    out, n_regions, indent = [], 0, None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(begin):
            if indent is not None:
                raise ValueError(f"{where}: nested {begin!r}")
            indent = line[: len(line) - len(line.lstrip())]
            out.extend(indent + s for s in stub)
            n_regions += 1
        elif stripped.startswith(end):
            if indent is None:
                raise ValueError(f"{where}: {end!r} without {begin!r}")
            indent = None
        elif indent is None:
            out.append(line)
    if indent is not None:
        raise ValueError(f"{where}: {begin!r} without {end!r}")
    return "\n".join(out), n_regions


def make_student_notebook(nb, name="notebook"):
    """Return a student copy of ``nb`` (the input is not modified); see the module docstring."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        where = f"{name}: {cell_label(cell, index)}"
        source = cell.source
        if is_solution(cell):
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            source, n_regions = replace_regions(source, BEGIN_SOLUTION, END_SOLUTION, stub, where=where)
            if n_regions == 0:
                source = "\n".join(stub)
        if is_check(cell):
            source, _ = replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, [], where=where)
        leaked = [m for m in MARKERS if m in source]
        if leaked:
            raise ValueError(f"{where}: marker {leaked[0]!r} outside a solution/check cell region")
        cell.source = source
        meta = cell.metadata
        for key in ("execution", "ExecuteTime"):
            meta.pop(key, None)
        if "nbgrader" in meta:
            meta["deletable"] = False
            if is_check(cell) or is_locked(cell):
                meta["editable"] = False
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def read_notebook(path):
    path = Path(path)
    if path.suffix == ".ipynb":
        return nbformat.read(path, as_version=4)
    import jupytext  # only needed for text notebooks

    return jupytext.read(path)


def summarize(nb):
    solutions = [c for c in nb.cells if is_solution(c)]
    checks = [c for c in nb.cells if is_check(c)]
    points = sum(float(nbgrader_meta(c).get("points", 0)) for c in checks)
    return f"{len(solutions)} solution cells, {len(checks)} check cells, {points:g} points"


def build(notebooks, out):
    """Write the student copy (``.ipynb`` and ``.md``) of each notebook into ``out``."""
    import jupytext

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in map(Path, notebooks):
        nb = read_notebook(path)
        student = make_student_notebook(nb, name=path.name)
        target = out / (path.stem + ".ipynb")
        nbformat.write(student, target)
        jupytext.write(copy.deepcopy(student), out / (path.stem + ".md"), fmt="md:myst")
        print(f"{path.name}: {summarize(nb)} -> {target}")
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="instructor notebooks (default: chapters/*.ipynb)")
    parser.add_argument("--out", default=str(REPO / "build" / "assignments"), help="output folder")
    args = parser.parse_args(argv)
    notebooks = args.notebooks or sorted((REPO / "chapters").glob("*.ipynb"))
    try:
        written = build(notebooks, args.out)
    except (ValueError, OSError, nbformat.reader.NotJSONError) as err:
        print(f"make_assignments: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} student notebooks to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
