"""Build student copies of the chapter notebooks (an offline stand-in for ``nbgrader generate_assignment``).

    python tools/make_assignments.py [NOTEBOOK ...] [--out build/assignments]

For each notebook (default: every ``chapters/*.ipynb``) it writes ``OUT/<name>.ipynb`` and its
``OUT/<name>.md`` (MyST) twin in which
- every ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region of a solution cell becomes
  ``# YOUR CODE HERE`` + ``raise NotImplementedError()`` at the region's indentation
  (a solution cell without a region is replaced whole, as nbgrader does);
- every ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` region of a check cell is removed;
- outputs and execution counts are cleared; cell metadata is kept, and check cells are marked
  read-only and undeletable (nbgrader's defaults), so nbgrader still recognizes every cell;
- worked answers are removed: in the ``## Exercises`` part, an exercise block (a ``### Exercise
  ...`` heading, or a paragraph that starts with a bold ``**Exercise ...**`` label, and everything
  after it up to the next such block start or ``##``/``###`` heading, across cells) that holds no
  nbgrader cell is an ungraded exercise's worked answer: its heading line (or bold label) stays,
  the rest becomes one markdown cell ``*Your answer here.*`` and its code cells are dropped; a
  cell tagged ``instructor-only`` is dropped wherever it stands;
- a generated header cell comes first: what to fill in, how to check, the points per exercise
  (from the check cells' nbgrader metadata) and how to submit.
A marker outside a solution/check cell, or an unpaired marker, is an error: the tool refuses to
write a copy that could leak a solution. Nothing is executed.
"""
import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
CODE_STUB = ["# YOUR CODE HERE", "raise NotImplementedError()"]
TEXT_STUB = ["YOUR ANSWER HERE"]
ANSWER_STUB = "*Your answer here.*"
INSTRUCTOR_ONLY = "instructor-only"
HEADER_TAG = "student-header"
EXERCISES = re.compile(r"^##\s+Exercises\b")
HEADING = re.compile(r"^(#{1,3})\s")            # a level-1 to level-3 markdown heading line
EXERCISE_HEADING = re.compile(r"^###\s+Exercises?\b")
EXERCISE_LABEL = re.compile(r"^\*\*Exercises?\b[^*]*\*\*")  # a paragraph starting **Exercise 3.**
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


def tags(cell):
    found = cell.get("metadata", {}).get("tags", [])
    return list(found) if isinstance(found, list) else []


def _chunks(cell):
    """A markdown cell's source cut before each level 1-3 heading line (code cells: one chunk)."""
    if cell.cell_type != "markdown":
        return [cell.source]
    chunks, current = [], []
    for line in cell.source.splitlines():
        if (HEADING.match(line) or EXERCISE_LABEL.match(line)) and current:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    chunks.append("\n".join(current))
    return chunks


def _new_markdown(source, like=None):
    cell = nbformat.v4.new_markdown_cell(source)
    if like is not None:
        cell.metadata = copy.deepcopy(like.metadata)
    cell.pop("id", None)
    return cell


def strip_worked_answers(cells, name="notebook"):
    """``(cells, removed)``: ``cells`` without ``instructor-only`` cells and without the worked
    answers of ungraded exercises (see the module docstring); ``removed`` lists one dict per
    stripped block: ``heading``, ``markdown`` (the text removed) and ``code`` (the code cells
    removed). The input cells are not modified."""
    kept = []
    for index, cell in enumerate(cells):
        if INSTRUCTOR_ONLY in tags(cell):
            if "nbgrader" in cell.get("metadata", {}):
                raise ValueError(f"{name}: {cell_label(cell, index)} is an nbgrader cell tagged "
                                 f"{INSTRUCTOR_ONLY!r}: the student copy would lose it")
            continue
        kept.append(cell)
    start = next((i for i, c in enumerate(kept) if c.cell_type == "markdown"
                  and any(EXERCISES.match(line) for line in c.source.splitlines())), None)
    if start is None:
        return [copy.deepcopy(c) for c in kept], []
    # units: (cell, text) in order; a block starts at each heading chunk of level <= 3
    blocks, in_section = [], True
    for cell in kept[start:]:
        for text in _chunks(cell):
            first = text.splitlines()[0] if text and cell.cell_type == "markdown" else ""
            heading, label = HEADING.match(first), EXERCISE_LABEL.match(first)
            if heading and EXERCISES.match(first):
                in_section = True
            elif heading and len(heading.group(1)) <= 2:
                in_section = False                  # a later level-2 heading ends the section
            if heading or label or not blocks:
                blocks.append({"heading": label.group(0) if label else first if heading else None,
                               "units": [],
                               "answer": bool(in_section and (label or EXERCISE_HEADING.match(first)))})
            blocks[-1]["units"].append((cell, text))
    out, removed = [copy.deepcopy(c) for c in kept[:start]], []
    pending = {"cell": None, "texts": []}   # consecutive kept chunks of one markdown cell

    def flush():
        if pending["cell"] is not None:
            out.append(_new_markdown("\n".join(pending["texts"]), like=pending["cell"]))
            pending["cell"], pending["texts"] = None, []

    for block in blocks:
        graded = any("nbgrader" in cell.get("metadata", {}) for cell, _ in block["units"])
        if block["answer"] and not graded:
            heading_cell, heading_text = block["units"][0]
            rest = heading_text[len(block["heading"]):]
            removed.append({"heading": block["heading"],
                            "markdown": "\n\n".join([rest] + [t for c, t in block["units"][1:]
                                                            if c.cell_type == "markdown"]),
                            "code": [t for c, t in block["units"] if c.cell_type == "code"]})
            if pending["cell"] is not heading_cell:
                flush()
                pending["cell"] = heading_cell
            pending["texts"].append(block["heading"])
            flush()
            out.append(_new_markdown(ANSWER_STUB))
            continue
        for cell, text in block["units"]:
            if cell.cell_type != "markdown":
                flush()
                out.append(copy.deepcopy(cell))
                continue
            if pending["cell"] is not cell:
                flush()
                pending["cell"] = cell
            pending["texts"].append(text)
    flush()
    seen = set()
    for cell in out:                  # one cell split into several must not repeat its id
        if cell.get("id") and cell["id"] in seen:
            cell.pop("id")
        seen.add(cell.get("id"))
    return out, removed


def exercise_table(nb):
    """``[(exercise heading, grade_id, points)]`` for each check cell, in order; the heading is
    the last ``###`` heading or bold ``**Exercise ...**`` label above the check cell."""
    rows, heading = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                label = EXERCISE_LABEL.match(line)
                if line.startswith("### "):
                    heading = line[4:].strip()
                elif label:
                    heading = label.group(0).strip("*").strip().rstrip(".")
        if is_check(cell):
            meta = nbgrader_meta(cell)
            rows.append((heading or "(untitled)", meta.get("grade_id", "?"), float(meta.get("points", 0))))
    return rows


def header_cell(nb, filename):
    """The generated first cell of a student copy (None for a notebook without graded exercises)."""
    rows = exercise_table(nb)
    if not rows:
        return None
    total = sum(points for _, _, points in rows)
    table = ["| Exercise | grade_id | Points |", "|---|---|---|"]
    table += [f"| {heading.replace('|', '/')} | `{grade_id}` | {points:g} |" for heading, grade_id, points in rows]
    table.append(f"| **Total** | | **{total:g}** |")
    lines = [
        f"**Student copy.** This notebook has {len(rows)} graded exercise{'s' * (len(rows) != 1)} "
        f"({total:g} points), at the end under *Exercises*. The other exercises are for practice "
        "and are not graded: write your answer where it says *Your answer here.*",
        "",
        "* **What to fill in.** In each graded exercise, replace the lines `# YOUR CODE HERE` and "
        "`raise NotImplementedError()` with your code. Leave the other cells as they are.",
        "* **How to check.** Run the notebook from the top (Run > Run All Cells), then the check "
        "cell after each exercise: it prints `[check ...] pass`, or raises an `AssertionError` "
        "with a hint. The check cells are read-only.",
        "* **Points** (all or nothing per exercise):",
        "",
        *table,
        "",
        f"* **How to submit.** Save the notebook under its original name, `{filename}`, and hand "
        "in that file. It is graded by running it in a sandbox against hidden checks, on other "
        "inputs than the visible ones, so a visible check that passes is a good sign, not a grade.",
    ]
    cell = nbformat.v4.new_markdown_cell("\n".join(lines))
    cell.pop("id", None)
    cell.metadata["tags"] = [HEADER_TAG]
    return cell


def make_student_notebook(nb, name="notebook", *, keep_solutions=False, header=True):
    """Return a student copy of ``nb`` (the input is not modified); see the module docstring.

    ``keep_solutions=True`` strips everything else but keeps the solution regions and hidden
    tests: the instructor's answers in a student copy's cells, to check that no graded exercise
    depends on a stripped cell."""
    nb = copy.deepcopy(nb)
    nb.cells, _ = strip_worked_answers(nb.cells, name=name)
    for index, cell in enumerate(nb.cells):
        where = f"{name}: {cell_label(cell, index)}"
        source = cell.source
        if keep_solutions:
            pass
        elif is_solution(cell):
            stub = CODE_STUB if cell.cell_type == "code" else TEXT_STUB
            source, n_regions = replace_regions(source, BEGIN_SOLUTION, END_SOLUTION, stub, where=where)
            if n_regions == 0:
                source = "\n".join(stub)
        if is_check(cell) and not keep_solutions:
            source, _ = replace_regions(source, BEGIN_HIDDEN, END_HIDDEN, [], where=where)
        leaked = [] if keep_solutions else [m for m in MARKERS if m in source]
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
    first = header_cell(nb, name) if header else None
    if first is not None:
        nb.cells.insert(0, first)
    _fix_ids(nb)
    return nb


def _fix_ids(nb):
    """Give every cell a unique id where the format has ids (split or new cells lack one)."""
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        for cell in nb.cells:
            cell.pop("id", None)
        return
    seen = set()
    for index, cell in enumerate(nb.cells):
        if not cell.get("id") or cell["id"] in seen:
            cell["id"] = f"student-{index}"
        seen.add(cell["id"])


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
