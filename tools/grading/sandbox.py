"""Run one submission's job in a throwaway sandbox and bring back its raw results (trusted side).

Two modes, chosen once per grading run:

``namespaces`` (running as root where ``unshare`` works): new mount, pid, network, ipc and uts
namespaces; a minimal root file system (read-only system folders and Python, private /tmp and
/proc, a size-limited tmpfs /sandbox holding a fresh copy of the harness, the job and d2lopt);
an unprivileged uid of its own per concurrent sandbox; CPU, memory, file-size, process and
open-file limits; no network. When the sandbox's pid 1 dies, the kernel kills every process in it.

``plain`` (otherwise): a separate process in a new session with the same resource limits, a
scrubbed environment and its own folders, its process group killed at the end (and, as root, a
uid of its own whose processes are all killed). Documented as weaker in INSTRUCTORS.md.
"""
import json
import os
import pwd
import resource
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
UID_BASE = 2_000_000_000   # far above any ordinary account; each run picks its own block of uids
MAX_RESULT_BYTES = 16 << 20


def _uid_in_use(uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def processes_of(uid):
    """Pids of the live processes whose real uid is ``uid``."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            pids.append(int(entry))
                        break
        except OSError:
            continue
    return pids


def _reachable_by_others(path):
    """Can any user reach (traverse to) ``path``? Checks every folder on its real path."""
    path = Path(os.path.realpath(path))
    return all(os.stat(p).st_mode & 0o001 for p in [*reversed(path.parents)] + ([path] if path.is_dir() else []))


def namespaces_available():
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "true"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


class Sandboxes:
    """Shared set-up for one grading run: the package copy, the mode, the limits."""

    def __init__(self, *, cell_timeout, notebook_timeout, memory_mb=4096, file_mb=64, nproc=64,
                 sandbox_mb=512, tmp_mb=256, mode=None):
        self.cell_timeout, self.notebook_timeout = cell_timeout, notebook_timeout
        self.memory_mb, self.file_mb, self.nproc = memory_mb, file_mb, nproc
        self.sandbox_mb, self.tmp_mb = sandbox_mb, tmp_mb
        self.mode = mode or ("namespaces" if namespaces_available() else "plain")
        self.as_root = os.geteuid() == 0
        self.uid_base = UID_BASE + secrets.randbelow(1_000_000) * 64   # concurrent runs never share a uid
        self.run_dir = Path(tempfile.mkdtemp(prefix="d2lopt-grade-run-"))
        self.pkg = self.run_dir / "pkg"
        shutil.copytree(REPO / "d2lopt", self.pkg / "d2lopt",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copytree(REPO / "data", self.pkg / "data")
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(self.pkg)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.mplconfig = self.run_dir / "mplconfig"
        self.mplconfig.mkdir()
        subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], check=False,
                       env={"PATH": os.defpath, "MPLCONFIGDIR": str(self.mplconfig), "MPLBACKEND": "Agg"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for path in [self.run_dir, *self.run_dir.rglob("*")]:
            os.chmod(path, 0o755 if path.is_dir() else 0o644)

    def close(self):
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def uid(self, slot):
        uid = self.uid_base + slot
        while _uid_in_use(uid) or processes_of(uid):
            uid += 64_000_000
        return uid

    def env(self, root):
        return {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
                "HOME": f"{root}/home", "TMPDIR": f"{root}/tmp", "PYTHONPATH": f"{root}/pkg",
                "MPLCONFIGDIR": f"{root}/mplconfig", "MPLBACKEND": "Agg", "LANG": "C.UTF-8",
                "USER": "student", "LOGNAME": "student", "PYTHONDONTWRITEBYTECODE": "1",
                "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                "PYTHONHASHSEED": "0", "D2L_NO_ANIMATION": "1", "CUDA_VISIBLE_DEVICES": ""}

    def limits(self):
        return {resource.RLIMIT_CPU: int(self.notebook_timeout) + 30,
                resource.RLIMIT_AS: self.memory_mb << 20, resource.RLIMIT_FSIZE: self.file_mb << 20,
                resource.RLIMIT_NPROC: self.nproc, resource.RLIMIT_NOFILE: 256, resource.RLIMIT_CORE: 0}

    def run(self, job, slot=0):
        """Run ``job`` (see harness.py) in a fresh sandbox; return ``(records, notes)``.

        ``records`` are the JSON objects the harness wrote (at most MAX_RESULT_BYTES of them);
        ``notes`` say why the run ended early, if it did. Every process of the sandbox is dead
        when this returns.
        """
        tmp = Path(tempfile.mkdtemp(prefix="d2lopt-sandbox-"))
        uid = self.uid(slot) if self.as_root else None
        if self.mode == "plain" and uid is not None and not all(
                _reachable_by_others(p) for p in (sys.executable, sys.prefix, sys.base_prefix)):
            uid = None    # Python lives where other users cannot reach it (e.g. under /root)
        read_fd, write_fd = os.pipe()
        notes = []
        try:
            stage = tmp / "stage"
            stage.mkdir()
            shutil.copy2(HERE / "harness.py", stage / "harness.py")
            (stage / "job.json").write_text(json.dumps(job), encoding="utf-8")
            if self.mode == "namespaces":
                (tmp / "newroot").mkdir()
                cfg = {"newroot": str(tmp / "newroot"), "staging": str(stage), "uid": uid,
                       "copy": {"pkg": str(self.pkg), "mplconfig": str(self.mplconfig)},
                       "python_dirs": sorted({sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix)}),
                       "python": sys.executable, "env": self.env("/sandbox"),
                       "limits": {str(k): v for k, v in self.limits().items()},
                       "tmp_mb": self.tmp_mb, "sandbox_mb": self.sandbox_mb, "result_fd": write_fd}
                (tmp / "boot.json").write_text(json.dumps(cfg), encoding="utf-8")
                argv = ["unshare", "--mount", "--pid", "--fork", "--net", "--ipc", "--uts", "--kill-child",
                        "--", sys.executable, "-I", "-S", str(HERE / "boot.py"), str(tmp / "boot.json")]
                preexec, cwd, env = None, "/", {"PATH": os.defpath}
            else:
                for name in ("work", "home", "tmp"):
                    (stage / name).mkdir()
                shutil.copytree(self.pkg, stage / "pkg")
                shutil.copytree(self.mplconfig, stage / "mplconfig")
                if uid is not None:
                    os.chmod(tmp, 0o755)
                    for path in [stage, *stage.rglob("*")]:
                        os.lchown(path, uid, uid)
                argv = [sys.executable, "-s", str(stage / "harness.py"), str(stage / "job.json"), str(write_fd)]
                limits = self.limits()

                def preexec():
                    for which, value in limits.items():
                        resource.setrlimit(which, (value, value))
                    if uid is not None:
                        os.setgroups([])
                        os.setresgid(uid, uid, uid)
                        os.setresuid(uid, uid, uid)
                cwd, env = str(stage / "work"), self.env(str(stage))
            with open(tmp / "boot.err", "wb") as err:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=err, cwd=cwd, env=env, pass_fds=(write_fd,),
                                        preexec_fn=preexec, start_new_session=True)
            os.close(write_fd)
            write_fd = None
            data, ended = self._collect(read_fd, proc, notes)
            records = []
            for line in data.decode("utf-8", "replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
            if not ended and not any(r.get("done") is True for r in records):
                boot_err = (tmp / "boot.err").read_bytes()[-2000:].decode("utf-8", "replace")
                if self.mode == "namespaces" and not records and boot_err.strip():
                    notes.append("the sandbox did not start: " + boot_err.strip().splitlines()[-1])
            return records, notes
        finally:
            if write_fd is not None:
                os.close(write_fd)
            os.close(read_fd)
            if uid is not None:
                self._kill_uid(uid)
            shutil.rmtree(tmp, ignore_errors=True)

    def _collect(self, read_fd, proc, notes):
        """Read the result pipe until EOF, the notebook time limit or the size cap; then kill."""
        deadline = time.monotonic() + self.notebook_timeout + 20   # + sandbox start
        chunks, size, ended = [], 0, False
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    notes.append(f"notebook time limit ({self.notebook_timeout:g} s) reached; later exercises did not run")
                    ended = True
                    break
                ready, _, _ = select.select([read_fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(read_fd, 1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_RESULT_BYTES:
                    notes.append("the notebook wrote too much to the results channel; the rest was ignored")
                    ended = True
                    break
                chunks.append(chunk)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.kill()
            proc.wait()
        return b"".join(chunks), ended

    @staticmethod
    def _kill_uid(uid, wait=5.0):
        """Kill every process of the sandbox's uid (detached ones included) and wait for them."""
        deadline = time.monotonic() + wait
        while True:
            pids = processes_of(uid)
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
