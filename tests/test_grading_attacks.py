"""tools/grade.py against adversarial submissions: no attack earns an undeserved point.

One grading run of the fixture notebook (tests/fixtures/assignment_demo.md, 6 points) over a
class of attackers, an honest student (the instructor's notebook: full marks) and a blank copy
(0). Each attacker's notebook is the blank student copy plus the attack; where an attacker also
solves an exercise honestly, that exercise's points are deserved.
"""
import csv
import hashlib
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

import grade  # noqa: E402
import make_assignments  # noqa: E402
from sandbox import namespaces_available  # noqa: E402

FIXTURE = REPO / "tests" / "fixtures" / "assignment_demo.md"
SPECS = REPO / "tests" / "fixtures" / "assignment_demo_specs.py"
SECRET = "grader-secret-6f1d"
MARKER = f"d2lopt-attack-{os.getpid()}"   # unique: other test runs may grade at the same time
pytestmark = pytest.mark.xdist_group("grading-attacks")

ADAGRAD = """
def adagrad_step(x, g, s, lr, eps):
    s = [si + gi * gi for si, gi in zip(s, g)]
    x = [xi - lr * gi / (math.sqrt(si) + eps) for xi, gi, si in zip(x, g, s)]
    return x, s
"""
COSINE = """
def cosine_lr(t, base_lr, total_steps, final_lr=0.0):
    t = min(t, total_steps)
    return final_lr + (base_lr - final_lr) * (1 + math.cos(math.pi * t / total_steps)) / 2
"""


def attacks(repo, subs, out):
    """{student: attack code added to a blank notebook}; all score 0 unless listed in DESERVED."""
    fake = ("import types\nok = types.SimpleNamespace(passed=True, gap=0.0, verdict='ok', diagnosis=None)\n"
            "fake = types.SimpleNamespace(check_close=lambda *a, **k: print('[check x] pass'),\n"
            "    check_true=lambda *a, **k: None, check_optimizer=lambda *a, **k: None)\n")
    return {
        "rebind": fake + "exercises = checks = fake\n"
                         "def adagrad_step(*a): return ok\ndef adam_step(*a): return ok\ndef cosine_lr(*a): return ok\n",
        "monkeypatch": "import d2lopt.exercises as E\nE._report = lambda *a, **k: None\n"
                       "E.check_close = E.check_true = lambda *a, **k: None\n",
        "transformer": "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])\n",
        "sysmodules": textwrap.dedent("""
            import sys, json, types
            sys.modules['d2lopt.exercises'] = types.SimpleNamespace(check_close=lambda *a, **k: None)
            _dumps = json.dumps
            def forged(record, *a, **k):
                if 'probe' in record:
                    record = {'probe': record['probe'], 'results': [{'ok': 0.5}] * len(record['results'])}
                return _dumps(record, *a, **k)
            json.dumps = forged
            """),
        "exits": "import os\nos._exit(0)\n",
        "sysexit": "import sys\nsys.exit(0)\n",
        "reader": textwrap.dedent(f"""
            import glob, os, re
            found = []
            for pattern in [{str(repo)!r} + '/tests/fixtures/*.md', {str(repo)!r} + '/chapters/*.ipynb',
                            {str(out.parent)!r} + '/src/*.ipynb', '/tmp/**/*.ipynb', '../**/*.ipynb']:
                found += glob.glob(pattern, recursive=True)
            for path in found:
                text = open(path).read()
                for block in re.findall(r'def \\w+\\(.*?### END SOLUTION', text, re.S):
                    exec(block.replace('### BEGIN SOLUTION', '').replace('### END SOLUTION', ''), globals())
            """),
        "leaker": textwrap.dedent("""
            import os
            _env = '_'.join(os.environ.get(k, 'none') for k in ('D2LOPT_TEST_SECRET', 'HOME'))
            _env = ''.join(c if c.isalnum() else '_' for c in _env)[:30]
            def adam_step(*a):
                raise type('E_' + _env, (Exception,), {})(str(dict(os.environ)))
            """),
        "vandal": textwrap.dedent(f"""
            import os
            for path in [{str(subs / 'teacher' / 'assignment_demo.ipynb')!r},
                         {str(repo / 'd2lopt' / 'exercises.py')!r}, '/sandbox/pkg/d2lopt/exercises.py',
                         {str(repo / 'tests' / 'fixtures' / 'assignment_demo.md')!r},
                         {str(repo / 'chapters' / '07-adagrad.ipynb')!r}, {str(out / 'grades.csv')!r}]:
                try:
                    with open(path, 'w') as f:
                        f.write('vandalised')
                except OSError:
                    pass
            for path in ['/tmp/{MARKER}', os.environ.get('TMPDIR', '/tmp') + '/{MARKER}', '/var/tmp/{MARKER}',
                         '/dev/shm/{MARKER}']:
                try:
                    open(path, 'w').write('x')
                except OSError:
                    pass
            """),
        "daemon": textwrap.dedent(f"""
            import subprocess, sys
            code = ("import time, sys; time.sleep(4); "
                    "open({str(out / 'grades.csv')!r}, 'w').write('pwned')")
            subprocess.Popen([sys.executable, '-c', code, '{MARKER}'], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            import os
            for _ in range(200):
                try:
                    if os.fork() == 0:
                        os.setsid()
                        import time
                        time.sleep(60)
                        os._exit(0)
                except OSError:
                    break
            """),
        "forger": textwrap.dedent("""
            import os, json
            line = json.dumps({'probe': 'adagrad-update-check', 'results': [{'ok': [[0.0] * 3, [0.0] * 3]}] * 4})
            for fd in range(3, 64):
                try:
                    os.write(fd, (line + '\\n').encode())
                except OSError:
                    pass
            class Sly(float):
                def __float__(self): return 0.25
            def cosine_lr(*a): return Sly(0.0)
            """),
        "hog": "x = bytearray(64 * 2**30)\n",
        "spinner": "while True:\n    pass\n",
    }


DESERVED = {"teacher": 6, "hog": 3, "spinner": 3}   # hog and spinner also solve two exercises


def dirty_files():
    """Tracked files with uncommitted changes (someone may be editing them while the test runs)."""
    status = subprocess.run(["git", "status", "--porcelain", "-z", "--untracked-files=no"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode()
    return {entry[3:] for entry in status.split("\0") if len(entry) > 3}


def tracked_hashes():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    digest = {}
    for name in files.decode().split("\0"):
        path = REPO / name
        if name and path.is_file() and not path.is_symlink():
            digest[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digest


def sandbox_processes(uid_base):
    """Processes left by this run's sandboxes: the attack marker in the command line, or one of
    the run's sandbox uids."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            uid = int(next(l for l in Path(f"/proc/{entry}/status").read_text().splitlines()
                           if l.startswith("Uid:")).split()[1])
        except (OSError, StopIteration, ValueError):
            continue
        if MARKER.encode() in cmdline or (uid_base and uid >= uid_base and (uid - uid_base) % 64_000_000 < 64):
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("attacks")
    src, subs, out = root / "src", root / "submissions", root / "out"
    src.mkdir()
    instructor = jupytext.read(FIXTURE)
    nbformat.write(instructor, src / "assignment_demo.ipynb")
    blank = make_assignments.make_student_notebook(instructor)
    made = {"teacher": instructor, "blank": blank}
    for student, code in attacks(REPO, subs, out).items():
        nb = make_assignments.make_student_notebook(instructor)
        cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
        first = next(c for c in nb.cells if c.cell_type == "code")
        first.source = first.source.replace("from d2lopt import exercises", "")  # no torch: a faster start
        if student == "leaker":
            cells["adam-update"].source = code
        else:
            nb.cells.insert(1, nbformat.v4.new_code_cell(code))
        if student in ("hog", "spinner"):
            cells["adagrad-update"].source, cells["cosine-schedule"].source = ADAGRAD, COSINE
        made[student] = nb
    for student, nb in made.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "assignment_demo.ipynb")
    # submission-folder attacks
    (subs / "fifo").mkdir()
    os.mkfifo(subs / "fifo" / "assignment_demo.ipynb")
    (subs / "zero").mkdir()
    os.symlink("/dev/zero", subs / "zero" / "assignment_demo.ipynb")
    (subs / "linker").mkdir()
    os.symlink(src / "assignment_demo.ipynb", subs / "linker" / "assignment_demo.ipynb")
    (subs / "dup" / "hw").mkdir(parents=True)
    nbformat.write(instructor, subs / "dup" / "assignment_demo.ipynb")
    nbformat.write(instructor, subs / "dup" / "hw" / "assignment_demo.ipynb")
    (subs / "misnamed").mkdir()
    nbformat.write(instructor, subs / "misnamed" / "assignment_demo (1).ipynb")
    formula = '=HYPERLINK("evil.example","x")'
    (subs / formula).mkdir()
    nbformat.write(blank, subs / formula / "assignment_demo.ipynb")
    os.symlink(subs / "teacher", subs / "teacher-link")

    dirty, before = dirty_files(), tracked_hashes()
    os.environ["D2LOPT_TEST_SECRET"] = SECRET
    start = time.monotonic()
    try:
        code = grade.main(["--specs", str(SPECS), "--submissions", str(subs), "--out", str(out),
                           "--timeout", "5", "--notebook-timeout", "90", "--jobs", "2", "--memory", "3072"])
    finally:
        del os.environ["D2LOPT_TEST_SECRET"]
    elapsed = time.monotonic() - start
    report = (out / "report.md").read_text()
    uid_base = int(re.search(r"sandbox uids: (\d+)", report).group(1)) if os.geteuid() == 0 else None
    left_at_end = sandbox_processes(uid_base)
    time.sleep(5)           # the daemon would have rewritten grades.csv by now
    with open(out / "grades.csv", newline="") as f:
        rows = {row.pop("student"): row for row in csv.DictReader(f)}
    feedback = {p.stem: p.read_text() for p in (out / "feedback").glob("*.md")}
    return dict(code=code, rows=rows, feedback=feedback, report=report, before=before, uid_base=uid_base,
                dirty=dirty | dirty_files(),
                after=tracked_hashes(), left=left_at_end, instructor=instructor, elapsed=elapsed, out=out)


def total(graded, student):
    return float(graded["rows"][student]["total"])


def test_grader_runs_in_a_namespace_sandbox_here():
    if os.geteuid() != 0:
        pytest.skip("namespaces need root; the plain sandbox is used instead")
    assert namespaces_available()


def test_honest_full_blank_zero_and_no_attack_scores(graded):
    assert graded["code"] == 0
    scores = {student: total(graded, student) for student in graded["rows"]}
    assert scores["teacher"] == 6 and scores["blank"] == 0
    for student, score in scores.items():
        assert score == DESERVED.get(student, 0), (student, score)
    assert {"rebind", "monkeypatch", "transformer", "sysmodules", "exits", "sysexit", "reader", "leaker",
            "vandal", "daemon", "forger", "hog", "spinner", "fifo", "zero", "linker", "dup",
            "misnamed"} <= set(scores)


def test_refused_files_and_odd_folders_are_reported(graded):
    fb = graded["feedback"]
    assert "was not read: not a regular file" in fb["fifo"]
    assert "was not read: a symbolic link" in fb["zero"] and "was not read: a symbolic link" in fb["linker"]
    assert "2 notebooks named assignment_demo.ipynb" in fb["dup"]
    assert "did you mean assignment_demo.ipynb?" in fb["misnamed"]
    assert "ignored teacher-link: not a student folder" in graded["report"]


def test_csv_cells_cannot_start_a_formula(graded):
    text = (graded["out"] / "grades.csv").read_text()
    assert "_HYPERLINK" in text and not any(line.startswith(("=", "+", "-", "@")) for line in text.splitlines())
    assert all(not cell.startswith(("=", "+", "-", "@")) for line in text.splitlines() for cell in line.split(","))


def test_feedback_has_hints_only_never_solutions_tests_or_environment(graded):
    solution_lines = [line.strip() for c in graded["instructor"].cells if make_assignments.is_solution(c)
                      for line in c.source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                      if line.strip()]
    hidden = ["cosine-after-end", "exercises.check_close", "[0.1, 0.1, 0.1]"]
    for student, text in graded["feedback"].items():
        assert SECRET not in text and "Traceback" not in text and "/work" not in text, student
        assert not any(line in text for line in solution_lines + hidden), student
        assert all(len(line) <= 600 for line in text.splitlines()), student
    assert "your code raised E_none_" in graded["feedback"]["leaker"]   # the sandbox never saw the secret


def test_repository_and_other_results_untouched(graded):
    # Byte for byte: every tracked file of a clean checkout (files with uncommitted edits may be
    # changed by someone else meanwhile; those must at least not hold what the vandal wrote).
    changed = [name for name in graded["before"] if graded["before"][name] != graded["after"].get(name)]
    assert [name for name in changed if name not in graded["dirty"]] == []
    assert not [name for name in changed if b"vandalised" in (REPO / name).read_bytes()]
    assert not list(Path("/tmp").glob(MARKER + "*")) and not list(Path("/var/tmp").glob(MARKER + "*"))
    assert "pwned" not in (graded["out"] / "grades.csv").read_text()


def test_no_process_outlives_grading(graded):
    assert graded["left"] == [] and sandbox_processes(graded["uid_base"]) == []
