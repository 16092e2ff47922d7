"""Classroom tooling: d2lopt.exercises, tools/make_assignments.py, tools/grade.py, chapters/jupytext.toml.

The instructor notebook is tests/fixtures/assignment_demo.md (three exercises, 2 + 3 + 1 points),
its trusted grading specs tests/fixtures/assignment_demo_specs.py;
it is executed once per module into a tmp folder. Wrong submissions are made by editing the
student copy's solution cells the way students get these algorithms wrong.
"""
import ast
import csv
import json
import re
import sys
import types
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "assignment_demo.md"
SPECS = REPO / "tests" / "fixtures" / "assignment_demo_specs.py"  # the trusted grading specs
sys.path.insert(0, str(REPO / "tools"))

import grade  # noqa: E402  (tools/ is not a package)
import make_assignments  # noqa: E402

from d2lopt import exercises  # noqa: E402

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS")
CELL_TIMEOUT = 10  # seconds; generous for a loaded 2-core machine
# One worker runs the whole module under `pytest -n 2 --dist loadgroup` (or loadfile), so the
# instructor notebook is executed and the class graded once.
pytestmark = pytest.mark.xdist_group("assignments")


def run(nb, cwd, timeout=60):
    NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def by_id(nb):
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}


def errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Executed instructor notebook in src/, its student copy in student/."""
    root = tmp_path_factory.mktemp("assign")
    (root / "src").mkdir()
    instructor = run(jupytext.read(FIXTURE), root / "src")
    assert not any(errors(c) for c in instructor.cells), "the instructor fixture must run cleanly"
    nbformat.write(instructor, root / "src" / "assignment_demo.ipynb")
    make_assignments.build([root / "src" / "assignment_demo.ipynb"], root / "student")
    return root


def student_copy(root):
    return nbformat.read(root / "student" / "assignment_demo.ipynb", as_version=4)


# --- d2lopt.exercises -------------------------------------------------------------------------

def test_check_close_pass_prints_one_line_and_logs(tmp_path, monkeypatch, capsys):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(exercises.GRADE_LOG_ENV, str(log))
    exercises.check_close("sum", [0.1 + 0.2, 1.0], [0.3, 1.0], hint="add them")
    assert capsys.readouterr().out == "[check sum] pass\n"
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        {"check": "sum", "passed": True, "hint": None, "detail": None}]


def test_check_close_failure_raises_hint_without_expected_value(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(exercises.GRADE_LOG_ENV, str(log))
    with pytest.raises(AssertionError) as info:
        exercises.check_close("step", [1.0, 2.0], [1.0, 2.123456], hint="look at eps")
    message = str(info.value)
    assert message.startswith("step: look at eps") and "2.123456" not in message
    assert "1.2e-01" in message  # |2 - 2.123456| = 0.123456
    entry = json.loads(log.read_text())
    assert entry["check"] == "step" and entry["passed"] is False and entry["hint"] == "look at eps"


@pytest.mark.parametrize("got", [[1.0], [float("nan"), 1.0], None, "ab"])
def test_check_close_rejects_wrong_shape_nan_and_non_numbers(got):
    with pytest.raises(AssertionError, match="^x: h"):
        exercises.check_close("x", got, [1.0, 1.0], hint="h")


@pytest.mark.parametrize("got", [None, [None, None], (1.0, None)])
def test_check_close_says_when_the_function_returned_none(got):
    with pytest.raises(AssertionError, match=r"^x: h \(got None: does your function end with a return"):
        exercises.check_close("x", got, [1.0, 1.0], hint="h")


def test_check_close_accepts_tensors_and_validates_arguments():
    torch = pytest.importorskip("torch")
    exercises.check_close("t", torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-7], hint="h")
    with pytest.raises(ValueError, match="rtol must be a finite number >= 0"):
        exercises.check_close("t", 1.0, 1.0, rtol=-1.0, hint="h")
    with pytest.raises(ValueError, match="hint must be a non-empty string"):
        exercises.check_close("t", 1.0, 1.0, hint="")
    with pytest.raises(ValueError, match="name must be"):
        exercises.check_true("", True, hint="h")


def test_check_true_and_check_optimizer(capsys):
    exercises.check_true("clamped", 0.1 == 0.1, hint="h")
    ok = types.SimpleNamespace(passed=True, gap=0.0, verdict="match", diagnosis=None)
    exercises.check_optimizer("adam", ok)
    assert capsys.readouterr().out == "[check clamped] pass\n[check adam] pass\n"
    with pytest.raises(AssertionError, match="^clamped: stay at final_lr$"):
        exercises.check_true("clamped", False, hint="stay at final_lr")
    bad = types.SimpleNamespace(passed=False, gap=0.25, verdict="mismatch", diagnosis="eps inside the sqrt?")
    with pytest.raises(AssertionError, match=r"^adam: eps inside the sqrt\? \(gap = 2.5e-01\)$"):
        exercises.check_optimizer("adam", bad)
    with pytest.raises(TypeError, match="result must be a CheckResult"):
        exercises.check_optimizer("adam", 0.5)


# --- jupytext pairing -------------------------------------------------------------------------

def test_jupytext_toml_and_round_trip_keep_nbgrader_metadata(tmp_path):
    toml = REPO / "chapters" / "jupytext.toml"
    config = dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', toml.read_text(), flags=re.M))  # tomllib is 3.11+
    assert config["formats"] == "ipynb,md:myst"
    assert {"nbgrader", "tags"} <= set(config["cell_metadata_filter"].split(","))
    (tmp_path / "jupytext.toml").write_text(toml.read_text())
    md = tmp_path / "demo.md"
    md.write_text(FIXTURE.read_text())
    original = jupytext.read(md)
    original.cells[1].metadata["tags"] = ["hide-input"]  # tags must survive too
    jupytext.write(original, md, fmt="md:myst")
    from jupytext.cli import jupytext as jupytext_cli  # the CLI applies jupytext.toml

    jupytext_cli(["--to", "ipynb", str(md)])
    nb = nbformat.read(tmp_path / "demo.ipynb", as_version=4)
    assert len(by_id(nb)) == 6 and nb.cells[1].metadata["tags"] == ["hide-input"]
    assert by_id(nb)["adam-update-check"].metadata["nbgrader"] == {
        "grade": True, "grade_id": "adam-update-check", "locked": True, "points": 3,
        "schema_version": 3, "solution": False}
    md.unlink()
    jupytext_cli(["--to", "md:myst", str(tmp_path / "demo.ipynb")])
    back = jupytext.read(md)
    assert [(c.cell_type, c.source, dict(c.metadata)) for c in back.cells] == \
           [(c.cell_type, c.source, dict(c.metadata)) for c in original.cells]


# --- make_assignments -------------------------------------------------------------------------

def test_replace_regions_keeps_indentation_and_rejects_bad_markers():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    y = 2 * x\n    ### END SOLUTION\n    return y"
    new, n = make_assignments.replace_regions(source, make_assignments.BEGIN_SOLUTION,
                                              make_assignments.END_SOLUTION, make_assignments.CODE_STUB,
                                              where="t")
    assert n == 1
    assert new == "def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n    return y"
    for broken in ("### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                   "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"):
        with pytest.raises(ValueError, match="t: "):
            make_assignments.replace_regions(broken, make_assignments.BEGIN_SOLUTION,
                                             make_assignments.END_SOLUTION, [], where="t")
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")])
    with pytest.raises(ValueError, match="outside a solution/check cell"):
        make_assignments.make_student_notebook(plain)


def test_student_copy_has_no_solution_or_hidden_tests(built):
    instructor = nbformat.read(built / "src" / "assignment_demo.ipynb", as_version=4)
    student = student_copy(built)
    solution_lines = [line.strip() for c in instructor.cells if make_assignments.is_solution(c)
                      for line in c.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                      if line.strip()]
    assert len(solution_lines) == 9
    md_text = (built / "student" / "assignment_demo.md").read_text()
    for text in (nbformat.writes(student), md_text):
        for line in solution_lines + list(MARKERS) + ["cosine-after-end"]:
            assert line not in text
    assert by_id(student).keys() == by_id(instructor).keys()
    for grade_id, cell in by_id(student).items():
        assert cell.metadata["nbgrader"] == by_id(instructor)[grade_id].metadata["nbgrader"]
        assert cell.metadata["deletable"] is False
    assert all(c.outputs == [] and c.execution_count is None for c in student.cells if c.cell_type == "code")
    assert by_id(student)["adam-update"].source.splitlines()[2:4] == [
        "    # YOUR CODE HERE", "    raise NotImplementedError()"]
    twin = jupytext.read(built / "student" / "assignment_demo.md")
    assert [c.source for c in twin.cells] == [c.source for c in student.cells]
    assert by_id(twin)["cosine-schedule-check"].metadata["nbgrader"]["points"] == 1


def test_student_copy_runs_up_to_the_first_stub(built):
    nb = run(student_copy(built), built / "student")
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = next(i for i, c in enumerate(code) if errors(c))
    assert all(c.execution_count is not None and not errors(c) for c in code[:first])
    assert errors(code[first])[0].ename == "NotImplementedError"
    assert "nbgrader" in code[first].metadata
    for cell in code:
        if make_assignments.is_check(cell):
            assert [e.ename for e in errors(cell)] == ["NotImplementedError"]


def test_make_assignments_on_every_chapter_notebook(tmp_path):
    chapters = sorted((REPO / "chapters").glob("*.ipynb"))
    assert make_assignments.main(["--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == [p.name for p in chapters]
    for path in chapters:
        student = nbformat.read(tmp_path / path.name, as_version=4)
        texts = [nbformat.writes(student), (tmp_path / (path.stem + ".md")).read_text()]
        assert not any(m in t for m in MARKERS for t in texts), path.name
        for cell in student.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                if make_assignments.is_solution(cell):
                    assert "raise NotImplementedError()" in cell.source, path.name
                    ast.parse("\n".join(l for l in cell.source.splitlines() if not l.lstrip().startswith(("%", "!"))))


# --- grade ------------------------------------------------------------------------------------

def edit(nb, grade_id, old, new):
    cell = by_id(nb)[grade_id]
    assert old in cell.source
    cell.source = cell.source.replace(old, new)


def solve(nb, instructor, *grade_ids):
    for grade_id in grade_ids:
        by_id(nb)[grade_id].source = by_id(instructor)[grade_id].source


@pytest.fixture(scope="module")
def graded(built):
    instructor = nbformat.read(built / "src" / "assignment_demo.ipynb", as_version=4)
    subs = built / "submissions"
    made = {}
    made["teacher"] = instructor
    made["wrong"] = wrong = student_copy(built)  # eps inside the sqrt; a cosine that rises after T
    solve(wrong, instructor, "adagrad-update", "adam-update", "cosine-schedule")
    edit(wrong, "adagrad-update", "math.sqrt(si) + eps", "math.sqrt(si + eps)")
    edit(wrong, "cosine-schedule", "t = min(t, total_steps)", "pass")
    by_id(wrong)["adagrad-update-check"].source = 'print("[check adagrad-update] pass")'  # never run
    made["hang"] = hang = student_copy(built)
    solve(hang, instructor, "adagrad-update", "cosine-schedule")
    edit(hang, "adam-update", "raise NotImplementedError()", "while True:\n        pass")
    made["crash"] = crash = student_copy(built)  # the sandbox dies when the Adam probe runs
    solve(crash, instructor, "adagrad-update", "cosine-schedule")
    edit(crash, "adam-update", "raise NotImplementedError()", "import os; os._exit(1)")
    made["deleted"] = deleted = student_copy(built)  # Adam without bias correction; cosine check deleted
    solve(deleted, instructor, "adagrad-update", "adam-update", "cosine-schedule")
    edit(deleted, "adam-update", "mi / (1 - beta1**t)", "mi")
    edit(deleted, "adam-update", "vi / (1 - beta2**t)", "vi")
    deleted.cells.remove(by_id(deleted)["cosine-schedule-check"])
    for student, nb in made.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "assignment_demo.ipynb")
    (subs / "corrupt").mkdir()
    (subs / "corrupt" / "assignment_demo.ipynb").write_text('{"cells": [')
    out = built / "grades"
    code = grade.main(["--specs", str(SPECS), "--submissions", str(subs), "--out", str(out),
                       "--timeout", str(CELL_TIMEOUT), "--jobs", "2"])
    with open(out / "grades.csv", newline="") as f:
        rows = {row.pop("student"): row for row in csv.DictReader(f)}
    feedback = {p.stem: p.read_text() for p in (out / "feedback").glob("*.md")}
    return code, rows, feedback


def points(row):
    return {k: float(v) for k, v in row.items()}


def test_grader_exits_0_and_writes_one_row_and_feedback_per_student(graded):
    code, rows, feedback = graded
    assert code == 0
    assert sorted(rows) == sorted(feedback) == ["corrupt", "crash", "deleted", "hang", "teacher", "wrong"]
    assert list(next(iter(rows.values()))) == [
        "adagrad-update-check", "adam-update-check", "cosine-schedule-check", "total", "max"]


def test_instructor_solution_scores_full_marks(graded):
    _, rows, feedback = graded
    assert points(rows["teacher"]) == {"adagrad-update-check": 2, "adam-update-check": 3,
                                       "cosine-schedule-check": 1, "total": 6, "max": 6}
    assert "Total: 6 / 6 points" in feedback["teacher"]


def test_wrong_solutions_lose_their_points_with_their_hints(graded):
    _, rows, feedback = graded
    # the edited adagrad check cell is never run: the grade comes from the trusted spec
    assert points(rows["wrong"]) == {"adagrad-update-check": 0, "adam-update-check": 3,
                                     "cosine-schedule-check": 0, "total": 3, "max": 6}
    assert "look at where eps enters" in feedback["wrong"]
    assert "after total_steps the rate must stay at final_lr" in feedback["wrong"]
    assert "lr * sign(g)" not in feedback["wrong"]
    assert points(rows["deleted"])["adam-update-check"] == 0
    assert "compare your first step with lr * sign(g)" in feedback["deleted"]


def test_deleted_check_cell_is_still_graded(graded):
    _, rows, feedback = graded
    assert points(rows["deleted"]) == {"adagrad-update-check": 2, "adam-update-check": 0,
                                       "cosine-schedule-check": 1, "total": 3, "max": 6}


def test_endless_loop_is_cut_off_and_other_exercises_still_score(graded):
    _, rows, feedback = graded
    assert points(rows["hang"]) == {"adagrad-update-check": 2, "adam-update-check": 0,
                                    "cosine-schedule-check": 1, "total": 3, "max": 6}
    assert "`adam-update-check`: 0 / 3. timed out" in feedback["hang"]


def test_crash_scores_zero_from_there_on(graded):
    _, rows, feedback = graded
    assert points(rows["crash"]) == {"adagrad-update-check": 2, "adam-update-check": 0,
                                     "cosine-schedule-check": 0, "total": 2, "max": 6}
    assert "the notebook stopped before its end" in feedback["crash"]
    assert "`cosine-schedule-check`: 0 / 1. did not run" in feedback["crash"]


def test_corrupt_notebook_scores_zero_with_a_note(graded):
    _, rows, feedback = graded
    assert points(rows["corrupt"])["total"] == 0
    assert "could not read the notebook" in feedback["corrupt"]


def test_judge_compares_plain_data_like_check_close():
    from spec import Exercise, Probe, compare

    assert compare([1.0, 2.0], [1.0, 2.0 + 1e-12], 1e-9, 0)[0]
    assert compare({"shape": [2, 1], "data": [1.0, 2.0]}, [[1.0], [2.0]], 1e-9, 0)[0]
    assert compare([{"shape": [2], "data": [1, 2]}, 3.0], [[1.0, 2.0], 3.0], 0, 0)[0]  # (tensor, float)
    assert compare({"type": "NoneType"}, [1.0], 0, 0)[2].startswith("got None")
    assert compare([1.0], [1.0, 2.0], 0, 0)[2] == "shape (1,), expected shape (2,)"
    assert compare(float("nan"), 1.0, 0, 0)[2] == "got NaN or inf"
    exercise = Exercise("a-check", 2, ("f",), lambda rng: [])
    probes = [Probe({"kind": "call", "name": "f"}, hint="look at f", expected=1.0)]
    assert grade.judge_exercise(exercise, probes, {"results": [{"ok": 1.0}]}) == (2.0, None)
    assert grade.judge_exercise(exercise, probes, {"results": [{"ok": 1.5}]}) == (
        0.0, "look at f (max |got - expected| = 5.0e-01)")
    assert grade.judge_exercise(exercise, probes, {"results": [{"error": "Bad name!"}]}) == (
        0.0, "your code raised object")
    assert grade.judge_exercise(exercise, probes, {"results": [{"missing": "f"}]})[1].startswith("f is not defined")
    assert grade.judge_exercise(exercise, probes, None)[0] == 0


def test_csv_cells_cannot_start_a_formula_and_names_are_sanitised():
    assert grade.csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)" and grade.csv_safe("-1") == "'-1"
    assert grade.csv_safe("bob") == "bob"
    taken = set()
    assert grade.safe_student('=HYPERLINK("x")', taken) == "_HYPERLINK__x__"
    assert grade.safe_student("../..", taken) == "_._.."
    assert grade.safe_student("Bob", taken) == "Bob" and grade.safe_student("bob", taken) == "bob~2"
