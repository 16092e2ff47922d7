"""Autograde student notebooks against the instructor notebooks (an offline stand-in for ``nbgrader autograde``).

    python tools/grade.py --source chapters --submissions DIR --out DIR [--timeout 120] [--notebook-timeout 900]

Submissions are ``DIR/<student>/<notebook>.ipynb`` (deeper folders are searched too). For each one:
1. every check cell (``grade: true, solution: false``) and every locked cell found by ``grade_id``
   is restored from the instructor notebook, hidden tests included; a check cell the student
   deleted is not re-added, so that exercise scores 0;
2. the notebook runs once in a fresh kernel (nbclient, errors allowed, a per-cell and a
   per-notebook time limit; a cell that overruns is interrupted, and a kernel that does not
   recover is killed) with ``D2LOPT_GRADE_LOG`` naming a fresh file;
3. a check cell earns its points when it ran without error and every check it logged passed
   (it must log at least one when it calls a ``check_*`` helper). Printed output is not trusted.
Writes ``OUT/grades.csv`` (one row per student, one column per check, ``total``, ``max``) and
``OUT/feedback/<student>.md``. A broken, hanging or crashing submission scores 0 where it fails;
the grader itself exits 0. It runs student code: grade inside a container or throw-away VM.
"""
import argparse
import copy
import csv
import json
import math
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError

from make_assignments import cell_label, is_check, is_locked, nbgrader_meta

TIMEOUT_ENAME = "GraderTimeout"
CALLS_CHECK = re.compile(r"\bcheck_\w+\s*\(")


def load_sources(source):
    """``{stem: notebook}`` for every instructor notebook in ``source`` that has check cells."""
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"--source must be a folder of instructor notebooks, got {source}")
    paths = {p.stem: p for p in sorted(source.glob("*.md"))}
    paths.update({p.stem: p for p in sorted(source.glob("*.ipynb"))})  # the .ipynb wins
    notebooks = {}
    for stem, path in sorted(paths.items()):
        if path.suffix == ".md":
            import jupytext

            nb = jupytext.read(path)
        else:
            nb = nbformat.read(path, as_version=4)
        if any(is_check(c) for c in nb.cells):
            notebooks[stem] = (nb, path)
    return notebooks


def check_cells(nb):
    """``{grade_id: points}`` of the notebook's check cells, in notebook order."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c).get("points", 0))
            for c in nb.cells if is_check(c) and nbgrader_meta(c).get("grade_id")}


def find_submissions(submissions):
    """``{student: {stem: path}}`` from ``submissions/<student>/**/<stem>.ipynb``."""
    found = {}
    for student_dir in sorted(p for p in Path(submissions).iterdir() if p.is_dir()):
        files = {}
        for path in sorted(student_dir.rglob("*.ipynb")):
            if ".ipynb_checkpoints" not in path.parts:
                files.setdefault(path.stem, path)
        found[student_dir.name] = files
    return found


def restore_cells(student_nb, source_nb):
    """Overwrite check and locked cells of ``student_nb`` (by grade_id) with the instructor's."""
    protected = {nbgrader_meta(c)["grade_id"]: c for c in source_nb.cells
                 if (is_check(c) or is_locked(c)) and nbgrader_meta(c).get("grade_id")}
    seen = set()
    for cell in student_nb.cells:
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id in seen:  # a duplicated check cell counts as ordinary code
            cell.metadata.pop("nbgrader", None)
        elif grade_id in protected:
            original = protected[grade_id]
            cell.cell_type = original.cell_type
            cell.source = original.source
            cell.metadata = copy.deepcopy(original.metadata)
            if cell.cell_type == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)
            else:
                cell.pop("outputs", None)
                cell.pop("execution_count", None)
        seen.add(grade_id)
    return student_nb


def _read_new_lines(log_path, offset):
    with open(log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    entries = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            entry = None
        if isinstance(entry, dict):
            entries.append(entry)
        elif line.strip():
            entries.append({"check": "?", "passed": False, "hint": "unreadable grade-log line"})
    return entries, offset + len(data)


def execute(nb, *, cwd, cell_timeout, notebook_timeout, kernel_name="python3"):
    """Run ``nb`` in one kernel; return ``({cell_index: record}, notes)``.

    A record holds ``error`` (``"Name: message"`` or None), ``timed_out`` and the grade-log
    ``entries`` written while that cell ran. Cells after a kernel death or the notebook time
    limit get no record.
    """
    records, notes = {}, []
    replies = {}
    with tempfile.TemporaryDirectory(prefix="d2lopt-grade-") as tmp:
        log_path = Path(tmp) / "grade-log.jsonl"
        log_path.touch()
        env = dict(os.environ, D2LOPT_GRADE_LOG=str(log_path))
        env.setdefault("OMP_NUM_THREADS", "1")
        client = NotebookClient(
            nb, timeout=cell_timeout, kernel_name=kernel_name, allow_errors=True,
            interrupt_on_timeout=True, record_timing=False, shutdown_kernel="immediate",
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": "cell time limit", "traceback": []},
            resources={"metadata": {"path": str(cwd)}},
            on_cell_executed=lambda cell, cell_index, execute_reply: replies.__setitem__(cell_index, execute_reply),
        )
        deadline = time.monotonic() + notebook_timeout
        offset = 0
        with client.setup_kernel(env=env):
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code" or not cell.source.strip():
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    notes.append(f"notebook time limit ({notebook_timeout:g} s) reached before {cell_label(cell, index)}")
                    break
                client.timeout = max(1, math.ceil(min(cell_timeout, remaining)))
                replies.pop(index, None)
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError:
                    notes.append(f"kernel crashed while running {cell_label(cell, index)}; later cells did not run")
                    records[index] = {"error": "kernel crashed", "timed_out": False, "entries": []}
                    break
                content = (replies.get(index) or {}).get("content", {})
                timed_out = content.get("ename") == TIMEOUT_ENAME
                error = None if content else "the cell did not run (no reply from the kernel)"
                if content.get("status") == "error":
                    message = str(content.get("evalue", "")).strip().splitlines()
                    error = f"{content.get('ename', 'Error')}: {message[0][:300] if message else ''}".rstrip(": ")
                if timed_out:
                    error = f"timed out after {client.timeout} s"
                    notes.append(f"{cell_label(cell, index)} timed out after {client.timeout} s and was interrupted")
                entries, offset = _read_new_lines(log_path, offset)
                records[index] = {"error": error, "timed_out": timed_out, "entries": entries}
                if timed_out and not _responsive(client, replies, index):
                    notes.append("the kernel did not recover from the interrupt; later cells did not run")
                    break
    return records, notes


def _responsive(client, replies, index):
    """After an interrupt: does the kernel run a no-op within the cell time limit?"""
    probe, cell = nbformat.v4.new_code_cell("pass"), client.nb.cells[index]
    try:
        client.execute_cell(probe, index, store_history=False)
    except DeadKernelError:
        return False
    finally:
        client.nb.cells[index] = cell  # execute_cell stores the probe at that index
    return (replies.get(index) or {}).get("content", {}).get("ename") != TIMEOUT_ENAME


def _entry_hint(entry):
    text = f"{entry.get('check', '?')}: {entry.get('hint') or 'failed'}"
    return text + (f" ({entry['detail']})" if entry.get("detail") else "")


def score(nb, records, checks):
    """``{grade_id: (points, hint or None)}`` for every check in ``checks`` (missing ones score 0)."""
    results = {}
    for index, cell in enumerate(nb.cells):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if not is_check(cell) or grade_id not in checks or grade_id in results:
            continue
        record = records.get(index)
        if record is None:
            results[grade_id] = (0.0, "did not run (see the notes below)")
            continue
        failed = [e for e in record["entries"] if e.get("passed") is not True]
        hints = [_entry_hint(e) for e in failed]
        if record["error"] and (record["timed_out"] or not hints):
            hints.append(record["error"])
        if hints:
            results[grade_id] = (0.0, "; ".join(hints))
        elif not record["entries"] and CALLS_CHECK.search(cell.source):
            results[grade_id] = (0.0, "the check reported nothing to the grader (was d2lopt.exercises changed?)")
        else:
            results[grade_id] = (checks[grade_id], None)
    missing = (0.0, "check cell missing from the submission (deleted?)")
    return {grade_id: results.get(grade_id, missing) for grade_id in checks}


def grade_notebook(path, source_nb, source_path, *, cell_timeout, notebook_timeout, kernel_name):
    """Grade one submitted notebook; returns ``(results, notes)`` and never raises."""
    checks = check_cells(source_nb)
    zero = {grade_id: (0.0, None) for grade_id in checks}
    try:
        nb = nbformat.read(path, as_version=4)
        if not isinstance(nb.get("cells"), list):
            raise ValueError("no cell list")
    except Exception as err:  # corrupt JSON, wrong format, unreadable file
        return zero, [f"could not read the notebook ({type(err).__name__}); every exercise in it scores 0"]
    try:
        restore_cells(nb, source_nb)
        records, notes = execute(nb, cwd=Path(source_path).parent, cell_timeout=cell_timeout,
                                 notebook_timeout=notebook_timeout, kernel_name=kernel_name)
        for index, cell in enumerate(nb.cells):
            error = records.get(index, {}).get("error")
            expected = "raises-exception" in cell.metadata.get("tags", [])
            if error and not expected and not is_check(cell) and not records[index]["timed_out"]:
                notes.append(f"{cell_label(cell, index)} raised {error}")
        return score(nb, records, checks), notes
    except Exception as err:  # kernel failed to start, nbclient internals, ...
        return zero, [f"grading stopped: {type(err).__name__}: {err}"]


def _fmt(x):
    return f"{x:g}"


def write_feedback(path, student, graded, notes):
    lines = [f"# Feedback for {student}", ""]
    total = sum(p for results, _ in graded.values() for p, _ in results.values())
    maximum = sum(m for _, maxima in graded.values() for m in maxima.values())
    lines += [f"Total: {_fmt(total)} / {_fmt(maximum)} points", ""]
    for stem, (results, maxima) in graded.items():
        earned = sum(p for p, _ in results.values())
        lines += [f"## {stem}: {_fmt(earned)} / {_fmt(sum(maxima.values()))}", ""]
        for grade_id, (points, hint) in results.items():
            line = f"- `{grade_id}`: {_fmt(points)} / {_fmt(maxima[grade_id])}"
            lines.append(line + (f". {hint}" if hint else ""))
        if notes.get(stem):
            lines += ["", "Notes:"] + [f"- {note}" for note in notes[stem]]
        lines.append("")
    if notes.get(None):
        lines += ["## Other notes", ""] + [f"- {note}" for note in notes[None]] + [""]
    path.write_text("\n".join(lines), encoding="utf-8")


def grade(source, submissions, out, *, cell_timeout=120, notebook_timeout=900, kernel_name="python3", jobs=1):
    """Grade every submission; write ``out/grades.csv`` and ``out/feedback/``; return the CSV rows.

    ``jobs`` notebooks are graded at once (one kernel each).
    """
    sources = load_sources(source)
    found = find_submissions(submissions)
    stems = sorted({stem for files in found.values() for stem in files if stem in sources})
    checks = {stem: check_cells(sources[stem][0]) for stem in stems}
    all_ids = [gid for stem in stems for gid in checks[stem]]
    column = {(stem, gid): gid if all_ids.count(gid) == 1 else f"{stem}:{gid}"
              for stem in stems for gid in checks[stem]}
    options = dict(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, kernel_name=kernel_name)
    tasks = [(student, stem) for student, files in found.items() for stem in stems if stem in files]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {task: pool.submit(grade_notebook, found[task[0]][task[1]], *sources[task[1]], **options)
                   for task in tasks}
        done = {task: future.result() for task, future in futures.items()}
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    rows = []
    for student, files in found.items():
        graded, notes = {}, {}
        for stem in stems:
            results, notes[stem] = done.get((student, stem)) or (
                {gid: (0.0, None) for gid in checks[stem]}, ["not submitted"])
            graded[stem] = (results, checks[stem])
        notes[None] = [f"ignored {path.name}: no instructor notebook with check cells has this name"
                       for stem, path in files.items() if stem not in sources]
        row = {"student": student}
        row.update({column[stem, gid]: results[gid][0] for stem, (results, _) in graded.items() for gid in results})
        row["total"] = sum(v for k, v in row.items() if k != "student")
        row["max"] = sum(sum(checks[stem].values()) for stem in stems)
        rows.append(row)
        write_feedback(out / "feedback" / f"{student}.md", student, graded, notes)
        print(f"{student}: {_fmt(row['total'])} / {_fmt(row['max'])}")
    fields = ["student"] + [column[stem, gid] for stem in stems for gid in checks[stem]] + ["total", "max"]
    with open(out / "grades.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: (_fmt(v) if k != "student" else v) for k, v in row.items()} for row in rows)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(Path(__file__).resolve().parents[1] / "chapters"),
                        help="folder of instructor notebooks (default: chapters)")
    parser.add_argument("--submissions", required=True, help="folder with one sub-folder per student")
    parser.add_argument("--out", default="build/grades", help="where grades.csv and feedback/ go")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per cell (default 120)")
    parser.add_argument("--notebook-timeout", type=float, default=900, help="seconds per notebook (default 900)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    args = parser.parse_args(argv)
    for name, value in (("--timeout", args.timeout), ("--notebook-timeout", args.notebook_timeout)):
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{name} must be a finite number of seconds > 0, got {value}")
    if args.jobs < 1:
        parser.error(f"--jobs must be an integer >= 1, got {args.jobs}")
    if not Path(args.submissions).is_dir():
        parser.error(f"--submissions must be a folder, got {args.submissions}")
    try:
        rows = grade(args.source, args.submissions, args.out, cell_timeout=args.timeout,
                     notebook_timeout=args.notebook_timeout, kernel_name=args.kernel, jobs=args.jobs)
    except ValueError as err:
        parser.error(str(err))
    print(f"graded {len(rows)} students -> {Path(args.out) / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
