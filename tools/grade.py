"""Grade student notebooks: each one runs in a throwaway sandbox, the grade is decided outside it.

    python tools/grade.py --submissions DIR --out DIR [--timeout 120] [--notebook-timeout 900]
                          [--jobs 2] [--specs tools/grading/specs.py] [--seed N]

Submissions are ``DIR/<student>/**/<notebook>.ipynb``. For each notebook with a grading spec
(``tools/grading/specs.py``: one entry per graded check cell, keyed by its ``grade_id``):
1. the file is read only if it is a regular file of bounded size (symlinks, FIFOs, devices and
   oversized files are refused with a note; duplicates and unknown names are reported);
2. its code cells run in a sandbox (``tools/grading/sandbox.py``), check cells excepted; where a
   check cell stands (or at the end if it was deleted) the sandbox calls the student's functions
   on probe inputs drawn for this run and sends back the raw results as plain numbers;
3. here, in a process no student code ran in, those numbers are compared with reference values
   computed from the spec. An exercise earns its points when every probe matches.
Writes ``OUT/grades.csv`` (``student``, one column per exercise, ``total``, ``max``; rewritten
atomically after each student), ``OUT/feedback/<student>.md`` (instructor hints and error type
names only) and ``OUT/report.md`` (notes for the instructor). The grader exits 0 whatever the
submissions hold.
"""
import argparse
import csv
import difflib
import importlib.util
import io
import json
import math
import os
import queue
import re
import secrets
import stat
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "grading"))
sys.path.insert(0, str(HERE))

import nbformat  # noqa: E402
import numpy as np  # noqa: E402

from make_assignments import nbgrader_meta  # noqa: E402
from sandbox import Sandboxes  # noqa: E402
from spec import compare, gap_detail, safe_name  # noqa: E402

MAX_NOTEBOOK_BYTES = 16 << 20
MAX_ENTRIES, MAX_DEPTH = 2000, 6
MAX_HINT = 400
SUSPICIOUS = re.compile(r"_python_dispatch|_unset_dispatch|sys\.modules|/proc\b|ctypes|os\.fork|setsid|"
                        r"os\.kill|subprocess|input_transformers|builtins|gc\.get_objects|/sandbox|"
                        r"fdopen|os\.write\b|os\.dup2?\b|signal\.|d2lopt\.exercises\.\w+\s*=")


def load_specs(path):
    """``{stem: [Exercise, ...]}`` from a trusted spec file."""
    spec = importlib.util.spec_from_file_location(f"grading_specs_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SPECS


# --- submissions ---------------------------------------------------------------------------------

def safe_student(name, taken):
    """A folder name fit for a CSV cell and a file name; made unique among ``taken``."""
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    clean = re.sub(r"^[.\-]", "_", clean) or "student"
    unique, n = clean, 1
    while unique.lower() in taken:
        n += 1
        unique = f"{clean}~{n}"
    taken.add(unique.lower())
    return unique


def _walk(folder, depth=0, budget=None):
    """Entries under ``folder`` (no symlink is followed), skipping .ipynb_checkpoints."""
    budget = budget if budget is not None else [MAX_ENTRIES]
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        budget[0] -= 1
        if budget[0] < 0:
            return
        if entry.name == ".ipynb_checkpoints":
            continue
        yield entry
        if depth < MAX_DEPTH and entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, depth + 1, budget)


def find_submissions(submissions, stems, max_bytes=MAX_NOTEBOOK_BYTES):
    """``[(student, folder_name, {stem: path}, student_notes, instructor_notes)]`` and top-level notes."""
    root = Path(submissions)
    top_notes, students, taken = [], [], set()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        shown = _printable(entry.name)
        if entry.is_symlink() or not entry.is_dir(follow_symlinks=False):
            top_notes.append(f"ignored {shown}: not a student folder (a file or a symbolic link)")
            continue
        student = safe_student(entry.name, taken)
        found, notes, inotes = {}, [], []
        if student != entry.name:
            inotes.append(f"folder {shown} is listed as {student}")
        for item in _walk(entry.path):
            if not item.name.endswith(".ipynb"):
                continue
            rel = _printable(os.path.relpath(item.path, entry.path))
            try:
                st = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                continue
            why = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else
                   "not a regular file" if not stat.S_ISREG(st.st_mode) else
                   f"larger than {max_bytes >> 20} MiB" if st.st_size > max_bytes else None)
            if why:
                notes.append(f"{rel} was not read: {why}")
                continue
            stem = item.name[:-len(".ipynb")]
            if stem not in stems:
                close = difflib.get_close_matches(stem.lower(), sorted(stems), n=1, cutoff=0.6)
                notes.append(f"{rel} matches no assignment notebook and was not graded"
                             + (f" (did you mean {close[0]}.ipynb?)" if close else ""))
                continue
            found.setdefault(stem, []).append((rel, item.path))
        files = {}
        for stem, paths in found.items():
            if len(paths) > 1:
                notes.append(f"{len(paths)} notebooks named {stem}.ipynb ({', '.join(r for r, _ in paths)}); "
                             "none was graded: keep one and grade again")
            else:
                files[stem] = paths[0][1]
        students.append((student, files, notes, inotes + notes))
    return students, top_notes


def _printable(text, limit=120):
    return re.sub(r"[^\x20-\x7e]", "?", text)[:limit]


def read_notebook(path, max_bytes=MAX_NOTEBOOK_BYTES):
    """The notebook at ``path``, read only if it is a regular file of at most ``max_bytes``."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            raise ValueError("not a regular file of bounded size")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ValueError("too large")
    nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    if not isinstance(nb.get("cells"), list):
        raise ValueError("no cell list")
    return nb


# --- one notebook --------------------------------------------------------------------------------

def is_check_cell(cell):
    meta = nbgrader_meta(cell)
    return bool(meta.get("grade", False)) and not meta.get("solution", False)


def build_job(nb, exercises, probes, cell_timeout):
    """Steps for the harness: every code cell but the check cells, and each exercise's probes where
    its check cell stands (at the end if the student deleted it)."""
    by_id = {e.check_id: e for e in exercises}
    steps, placed = [], set()
    for index, cell in enumerate(nb.cells):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        grade_id = nbgrader_meta(cell).get("grade_id") if isinstance(cell.get("metadata"), dict) else None
        if isinstance(grade_id, str) and grade_id in by_id and grade_id not in placed:
            placed.add(grade_id)
            steps.append({"probe": grade_id, "requests": [p.request for p in probes[grade_id]]})
        elif is_check_cell(cell):
            continue
        elif source.strip():
            steps.append({"cell": index, "code": source})
    for e in exercises:
        if e.check_id not in placed:
            steps.append({"probe": e.check_id, "requests": [p.request for p in probes[e.check_id]]})
    return {"cell_timeout": cell_timeout, "steps": steps}


def judge_exercise(exercise, probes, record):
    """``(points, hint or None)`` of one exercise from the harness's record for it."""
    results = record.get("results") if isinstance(record, dict) else None
    if not isinstance(results, list) or len(results) != len(probes):
        return 0.0, "did not run (see the notes below)"
    for probe, result in zip(probes, results):
        if not isinstance(result, dict):
            return 0.0, "the notebook returned no usable answer"
        if "missing" in result:
            return 0.0, f"{safe_name(result['missing'])} is not defined when this exercise is checked"
        if "error" in result:
            err = result["error"]
            return 0.0, ("timed out" if err == "timeout" else f"your code raised {safe_name(err)}")
        if "ok" not in result:
            return 0.0, "the notebook returned no usable answer"
        try:
            if probe.judge is not None:
                passed, detail = probe.judge(result)
            else:
                passed, gap, detail = compare(result["ok"], probe.expected, probe.rtol, probe.atol)
                detail = detail or gap_detail(gap)
        except Exception:  # malformed data from the sandbox
            passed, detail = False, "the answer has an unexpected form"
        if not passed:
            hint = probe.hint if probe.judge is None else (detail or probe.hint)
            if probe.judge is None and detail:
                hint = f"{hint} ({detail})"
            return 0.0, hint[:MAX_HINT]
    return float(exercise.points), None


def grade_notebook(path, exercises, probes, sandboxes, slot):
    """``({check_id: (points, hint)}, student_notes, instructor_notes)``; never raises."""
    zero = {e.check_id: (0.0, None) for e in exercises}
    try:
        nb = read_notebook(path)
    except Exception as err:
        return zero, [f"could not read the notebook ({type(err).__name__}); every exercise in it scores 0"], []
    inotes = []
    for index, cell in enumerate(nb.cells):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        match = SUSPICIOUS.search(source if isinstance(source, str) else "")
        if match and not is_check_cell(cell):
            inotes.append(f"cell {index} uses {match.group(0)!r}: worth a look")
    try:
        job = build_job(nb, exercises, probes, sandboxes.cell_timeout)
        records, run_notes = sandboxes.run(job, slot)
    except Exception as err:
        return zero, ["grading stopped because of a grader problem; your instructor has been told"], [
            f"grading stopped: {type(err).__name__}: {_printable(str(err))}"]
    notes = list(run_notes)
    expected = {i for i, c in enumerate(nb.cells) if isinstance(c, dict) and isinstance(c.get("metadata"), dict)
                and "raises-exception" in (c["metadata"].get("tags") or [])}
    seen = set(expected)
    for r in records:
        if "cell" in r and isinstance(r.get("cell"), int) and r["cell"] not in seen and r.get("error"):
            seen.add(r["cell"])
            what = "timed out" if r.get("timed_out") else f"raised {safe_name(r['error'])}"
            notes.append(f"cell {r['cell']} {what}")
    by_probe = {}
    for r in records:
        if isinstance(r.get("probe"), str):
            by_probe.setdefault(r["probe"], r)
    results = {e.check_id: judge_exercise(e, probes[e.check_id], by_probe.get(e.check_id)) for e in exercises}
    if not any(r.get("done") is True for r in records) and not run_notes:
        notes.append("the notebook stopped before its end (it exited, crashed or ran out of memory)")
    return results, notes[:50], inotes[:20] + run_notes


# --- output --------------------------------------------------------------------------------------

def write_atomic(path, text):
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def csv_safe(value):
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _fmt(x):
    return f"{x:g}"


def feedback_text(student, graded, notes):
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
    return "\n".join(lines)


def grade(submissions, out, *, specs_path=None, cell_timeout=120, notebook_timeout=900, jobs=1, seed=None,
          mode=None, memory_mb=4096):
    """Grade every submission; write ``out/grades.csv``, ``out/feedback/``, ``out/report.md``;
    return the CSV rows."""
    specs = load_specs(specs_path or HERE / "grading" / "specs.py")
    students, top_notes = find_submissions(submissions, set(specs))
    stems = sorted({stem for _, files, _, _ in students for stem in files})
    seed = secrets.randbits(63) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    probes = {}
    for stem in sorted(specs):
        for e in specs[stem]:
            probes[e.check_id] = e.make(np.random.default_rng(rng.integers(2 ** 63)))
    checks = {stem: {e.check_id: float(e.points) for e in specs[stem]} for stem in stems}
    all_ids = [gid for stem in stems for gid in checks[stem]]
    column = {(stem, gid): gid if all_ids.count(gid) == 1 else f"{stem}:{gid}"
              for stem in stems for gid in checks[stem]}
    fields = ["student"] + [column[stem, gid] for stem in stems for gid in checks[stem]] + ["total", "max"]
    out = Path(out)
    (out / "feedback").mkdir(parents=True, exist_ok=True)
    report = ["# Grading report", "", f"seed: {seed}", ""] + [f"- {n}" for n in top_notes]
    rows, lock = {}, threading.Lock()
    slots = queue.Queue()
    for slot in range(jobs):
        slots.put(slot)
    sandboxes = Sandboxes(cell_timeout=cell_timeout, notebook_timeout=notebook_timeout, mode=mode,
                          memory_mb=memory_mb)
    report.insert(3, f"sandbox mode: {sandboxes.mode}")
    if sandboxes.as_root:
        report.insert(4, f"sandbox uids: {sandboxes.uid_base} + slot (+ 64000000 if taken)")

    def task(path, stem):
        slot = slots.get()
        try:
            return grade_notebook(path, specs[stem], probes, sandboxes, slot)
        finally:
            slots.put(slot)

    def finish(student, files, notes, inotes, futures):
        graded, fnotes = {}, {None: notes}
        irep = list(inotes)
        for stem in stems:
            if stem in futures:
                results, snotes, more = futures[stem].result()
                irep += [f"{stem}: {n}" for n in more]
            else:
                results, snotes = {gid: (0.0, None) for gid in checks[stem]}, ["not submitted"]
            graded[stem], fnotes[stem] = (results, checks[stem]), snotes
        row = {"student": student}
        row.update({column[stem, gid]: graded[stem][0][gid][0] for stem in stems for gid in checks[stem]})
        row["total"] = sum(v for k, v in row.items() if k != "student")
        row["max"] = sum(sum(checks[stem].values()) for stem in stems)
        write_atomic(out / "feedback" / f"{student}.md", feedback_text(student, graded, fnotes))
        with lock:
            rows[student] = row
            if irep:
                report.extend([f"## {student}", ""] + [f"- {n}" for n in irep] + [""])
            buf = io.StringIO()
            writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            for name in sorted(rows):
                writer.writerow({k: csv_safe(v if k == "student" else _fmt(v)) for k, v in rows[name].items()})
            write_atomic(out / "grades.csv", buf.getvalue())
            write_atomic(out / "report.md", "\n".join(report) + "\n")
        print(f"{student}: {_fmt(row['total'])} / {_fmt(row['max'])}", flush=True)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            pending = []
            for student, files, notes, inotes in students:
                futures = {stem: pool.submit(task, path, stem) for stem, path in files.items()}
                pending.append((student, files, notes, inotes, futures))
            for item in pending:
                finish(*item)
    finally:
        sandboxes.close()
    if not rows:
        write_atomic(out / "grades.csv", ",".join(fields) + "\n")
        write_atomic(out / "report.md", "\n".join(report) + "\n")
    return [rows[name] for name in sorted(rows)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", required=True, help="folder with one sub-folder per student")
    parser.add_argument("--out", default="build/grades", help="where grades.csv, feedback/ and report.md go")
    parser.add_argument("--specs", default=str(HERE / "grading" / "specs.py"), help="trusted grading specs")
    parser.add_argument("--source", help="ignored (kept for old command lines): the specs decide the grade")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per cell (default 120)")
    parser.add_argument("--notebook-timeout", type=float, default=900, help="seconds per notebook (default 900)")
    parser.add_argument("--memory", type=int, default=4096, help="MiB of address space per sandbox (default 4096)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks graded at once (default 1)")
    parser.add_argument("--seed", type=int, help="seed of the probe inputs (default: a fresh one per run)")
    parser.add_argument("--mode", choices=["namespaces", "plain"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name, value in (("--timeout", args.timeout), ("--notebook-timeout", args.notebook_timeout)):
        if not (math.isfinite(value) and value > 0):
            parser.error(f"{name} must be a finite number of seconds > 0, got {value}")
    if args.jobs < 1:
        parser.error(f"--jobs must be an integer >= 1, got {args.jobs}")
    if not Path(args.submissions).is_dir():
        parser.error(f"--submissions must be a folder, got {args.submissions}")
    out, subs = Path(args.out).resolve(), Path(args.submissions).resolve()
    if out == subs or subs in out.parents:
        parser.error("--out must not be inside --submissions")
    rows = grade(args.submissions, args.out, specs_path=args.specs, cell_timeout=args.timeout,
                 notebook_timeout=args.notebook_timeout, jobs=args.jobs, seed=args.seed, mode=args.mode,
                 memory_mb=args.memory)
    print(f"graded {len(rows)} students -> {Path(args.out) / 'grades.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
