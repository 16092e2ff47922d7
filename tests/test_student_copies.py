"""Student copies of every chapter carry no answer: no solution code, no worked answer.

Builds each chapter's student copy in memory with tools/make_assignments.py (nothing is
executed) and scans it:
- no solution region's code, normalized (comments and blank lines dropped, whitespace
  collapsed), appears in it, and no distinctive solution line either (a line found nowhere in
  the instructor notebook outside solution regions and hidden tests);
- the worked answers of ungraded exercises are gone (a sentence and the longest code line of
  each stripped block are absent), their headings and the question list stay;
- every graded exercise keeps its text, its solution stub and its visible check, and no code
  that runs in the student copy reads a name whose last definition was stripped (static);
- the generated header lists each graded exercise with the points of its trusted spec.
"""
import ast
import re
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tools" / "grading"))

import make_assignments as ma  # noqa: E402

CHAPTERS = sorted((REPO / "chapters").glob("[0-9][0-9]-*.ipynb"))
SOLUTION = re.compile(r"^[ \t]*### BEGIN SOLUTION[^\n]*\n(.*?)^[ \t]*### END SOLUTION", re.S | re.M)
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n(.*?)^[ \t]*### END HIDDEN TESTS", re.S | re.M)


def normalize(line):
    """A code line without its comment and with whitespace collapsed ('' for a blank line)."""
    line = re.sub(r"(^|\s)#.*$", "", line)        # comments (a '#' inside a string is rare here)
    return " ".join(line.split())


def normalized_lines(text):
    return [n for n in map(normalize, text.splitlines()) if n]


def outside_regions(nb):
    """Every cell's text with the solution regions and hidden tests cut out."""
    return [HIDDEN.sub("", SOLUTION.sub("", c.source)) for c in nb.cells]


@pytest.fixture(scope="module", params=CHAPTERS, ids=lambda p: p.stem)
def chapter(request):
    instructor = nbformat.read(request.param, as_version=4)
    student = ma.make_student_notebook(instructor, name=request.param.name)
    _, removed = ma.strip_worked_answers(instructor.cells, name=request.param.name)
    return request.param, instructor, student, removed


def student_texts(student):
    return [c.source for c in student.cells]


def test_no_solution_code_in_the_student_copy(chapter):
    path, instructor, student, _ = chapter
    solutions = [m.group(1) for c in instructor.cells if ma.is_solution(c) for m in SOLUTION.finditer(c.source)]
    assert solutions, f"{path.name}: no solution region found"
    copy_lines = [n for text in student_texts(student) for n in normalized_lines(text)]
    copy_flat = " ".join(copy_lines)
    elsewhere = {n for text in outside_regions(instructor) for n in normalized_lines(text)}
    for block in solutions:
        lines = normalized_lines(block)
        assert " ".join(lines) not in copy_flat, f"{path.name}: a whole solution block is visible:\n{block}"
        distinctive = [n for n in lines if n not in elsewhere]
        leaked = sorted(set(distinctive) & set(copy_lines))
        assert not leaked, f"{path.name}: solution lines visible in the student copy: {leaked}"


def _sentence(text):
    """The longest sentence of a markdown text, whitespace collapsed (None if all are short)."""
    sentences = [" ".join(t.split()) for t in re.split(r"(?<=[.;!?])\s+|\n\s*\n", text)]
    sentences = [t for t in sentences if len(t) > 30]
    return max(sentences, key=len) if sentences else None


def test_worked_answers_are_stripped_and_questions_stay(chapter):
    path, instructor, student, removed = chapter
    assert removed, f"{path.name}: no worked answer found to strip"
    flat = " ".join(" ".join(t.split()) for t in student_texts(student))
    copy_lines = {n for text in student_texts(student) for n in normalized_lines(text)}
    instructor_flat = " ".join(" ".join(c.source.split()) for c in instructor.cells)
    kept_flat = " ".join(" ".join(t.split()) for t in outside_regions(student))
    dropped = {code for block in removed for code in block["code"]}
    kept_lines = {n for c in instructor.cells if c.cell_type == "code" and c.source not in dropped
                  for n in normalized_lines(c.source)}
    for block in removed:
        assert block["heading"] in student_texts(student) or block["heading"] in flat
        at = next(i for i, c in enumerate(student.cells) if c.source.endswith(block["heading"]))
        assert student.cells[at + 1].source == ma.ANSWER_STUB, f"{path.name}: {block['heading']}"
        sentence = _sentence(block["markdown"])
        if sentence is not None:
            assert sentence in instructor_flat                      # the sampler reads real text
            assert sentence not in kept_flat, f"{path.name}: worked answer left: {sentence!r}"
        for code in block["code"]:
            longest = max(normalized_lines(code), key=len, default="")
            if longest not in kept_lines:                          # not also in a kept cell
                assert longest not in copy_lines, f"{path.name}: worked code left: {longest!r}"
    questions = next(c.source for c in instructor.cells if c.cell_type == "markdown"
                     and any(ma.EXERCISES.match(line) for line in c.source.splitlines()))
    listed = re.split(r"\n(?:###|\*\*Exercise)", questions.split("## Exercises", 1)[1])[0].strip()
    assert listed and " ".join(listed.split()) in flat, f"{path.name}: the question list is gone"


def test_graded_exercises_keep_text_stub_and_visible_check(chapter):
    path, instructor, student, _ = chapter
    ids = {ma.nbgrader_meta(c).get("grade_id") for c in student.cells if "nbgrader" in c.metadata}
    assert ids == {ma.nbgrader_meta(c).get("grade_id") for c in instructor.cells if "nbgrader" in c.metadata}
    for cell in student.cells:
        if ma.is_solution(cell):
            assert "raise NotImplementedError()" in cell.source
        if ma.is_check(cell):
            assert cell.source.strip() and "HIDDEN" not in cell.source
    for heading, _, _ in ma.exercise_table(instructor):   # a ### heading or a bold label
        assert any(("### " + heading) in c.source or ("**" + heading) in c.source
                   for c in student.cells), heading


SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
          ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _walk_module_scope(node):
    """The nodes of a cell's module scope: no function, class, lambda or comprehension body."""
    for child in ast.iter_child_nodes(node):
        yield child
        if not isinstance(child, SCOPES):
            yield from _walk_module_scope(child)


def _defined(tree):
    """Names a cell binds at module level."""
    names = set()
    for node in _walk_module_scope(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def _free(tree):
    """Names a cell reads that it never binds anywhere (globals it needs from earlier cells)."""
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return used - bound


def _parse(source):
    return ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                               for line in source.splitlines()))


def test_no_code_in_the_student_copy_needs_a_stripped_cell(chapter):
    """Walk the instructor's code cells in order; a name read by a cell that the student copy
    keeps must not have been last defined by a cell that the student copy drops."""
    path, instructor, student, removed = chapter
    dropped = {code for block in removed for code in block["code"]}
    dropped |= {c.source for c in instructor.cells if ma.INSTRUCTOR_ONLY in ma.tags(c)}
    last_from_dropped = {}
    for cell in instructor.cells:
        if cell.cell_type != "code":
            continue
        tree = _parse(cell.source)
        if cell.source not in dropped:
            needs = sorted(n for n in _free(tree) if last_from_dropped.get(n))
            assert not needs, f"{path.name}: a kept cell uses {needs}, defined only in a stripped cell"
        for name in _defined(tree):
            last_from_dropped[name] = cell.source in dropped


def test_header_lists_each_graded_exercise_with_its_spec_points(chapter):
    path, instructor, student, _ = chapter
    from specs import SPECS

    header = student.cells[0]
    assert header.cell_type == "markdown" and header.metadata["tags"] == [ma.HEADER_TAG]
    text = header.source
    for needle in ("# YOUR CODE HERE", "[check ...] pass", "AssertionError", path.name, "sandbox"):
        assert needle in text, needle
    spec_points = {e.check_id: e.points for e in SPECS[path.stem]}
    rows = ma.exercise_table(instructor)
    assert {grade_id: points for _, grade_id, points in rows} == spec_points
    for heading, grade_id, points in rows:
        assert f"| {heading} | `{grade_id}` | {points:g} |" in text
    assert f"**{sum(spec_points.values()):g}**" in text
    assert ma.header_cell(nbformat.v4.new_notebook(), "x.ipynb") is None


def test_instructor_only_cells_are_dropped_and_exercise_blocks_split_across_cells():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Title\n\nText."),
        nbformat.v4.new_code_cell("secret = 1", metadata={"tags": [ma.INSTRUCTOR_ONLY]}),
        nbformat.v4.new_markdown_cell("## Exercises\n\n1. Why?\n2. Code it.\n\n### Exercise 1: why\n\n"
                                      "Because the worked answer says so."),
        nbformat.v4.new_code_cell("worked = 2"),
        nbformat.v4.new_markdown_cell("More worked answer.\n\n### Exercise 2 (auto-checked): code it\n\nWrite f."),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 3\n    ### END SOLUTION",
                                  metadata={"nbgrader": {"grade_id": "f", "solution": True}}),
        nbformat.v4.new_code_cell("assert f() == 3", metadata={"nbgrader": {
            "grade_id": "f-check", "grade": True, "solution": False, "points": 2}}),
    ])
    student = ma.make_student_notebook(nb, name="demo.ipynb")
    sources = [c.source for c in student.cells]
    text = "\n".join(sources)
    assert "secret" not in text and "worked" not in text and "Because" not in text
    assert "1. Why?" in text and "Write f." in text and "return 3" not in text
    at = next(i for i, t in enumerate(sources) if t.endswith("### Exercise 1: why"))
    assert sources[at].startswith("## Exercises") and sources[at + 1] == ma.ANSWER_STUB
    assert "| Exercise 2 (auto-checked): code it | `f-check` | 2 |" in sources[0]
    assert len({c.id for c in student.cells}) == len(student.cells)
    with pytest.raises(ValueError, match="instructor-only"):
        bad = nbformat.v4.new_code_cell("x", metadata={"tags": [ma.INSTRUCTOR_ONLY], "nbgrader": {"grade_id": "x"}})
        ma.strip_worked_answers([bad])
