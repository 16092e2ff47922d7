"""Sandbox boot (trusted; runs as root, inside fresh mount/pid/net/ipc/uts namespaces made by
``unshare``, before any student code): build a minimal root file system, enter it, drop to an
unprivileged uid, set resource limits, then exec the harness with a scrubbed environment.

    python -I -S boot.py CONFIG.json

The new root is a tmpfs holding read-only bind mounts of the system directories and of the
Python installation, an empty private /tmp, a private /proc for the new pid namespace, a few
devices, and /sandbox (a size-limited tmpfs) with a fresh copy of what the staging folder holds:
the harness, the job, the d2lopt package. Nothing else of the host (the repository, other
submissions, the output folder) exists in it. When this process (pid 1 of the namespace) dies,
the kernel kills every process left in the namespace.
"""
import json
import os
import resource
import shutil
import subprocess
import sys

NEWROOT = None   # an empty folder of the host staging area; a tmpfs is mounted on it in this namespace


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def bind(src, ro=True):
    """Bind ``src`` at the same path inside the new root (read-only)."""
    if not os.path.lexists(src):
        return
    dst = NEWROOT + src
    if os.path.islink(src):
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if not os.path.lexists(dst):
            os.symlink(os.readlink(src), dst)
        return
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    sh("mount", "--rbind", src, dst)
    if ro:
        sh("mount", "-o", "remount,bind,ro,nosuid,nodev", dst)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        cfg = json.load(f)
    global NEWROOT
    NEWROOT, uid = cfg["newroot"], int(cfg["uid"])
    sh("mount", "--make-rprivate", "/")
    sh("mount", "-t", "tmpfs", "-o", "mode=755,size=16m", "tmpfs", NEWROOT)
    # The private temporary folders first: a Python (a virtual environment) that lives under
    # /tmp is then bound on top of the empty tmpfs instead of being hidden by it.
    for tmp in ("/tmp", "/dev/shm", "/var/tmp"):
        os.makedirs(NEWROOT + tmp, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", f"mode=1777,nosuid,nodev,size={cfg['tmp_mb']}m", "tmpfs",
           NEWROOT + tmp)
    for path in ["/usr", "/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin", "/etc",
                 "/sys/devices/system/cpu"] + cfg["python_dirs"]:
        bind(path)
    os.makedirs(NEWROOT + "/dev", exist_ok=True)
    for dev in ("null", "zero", "full", "random", "urandom"):
        bind("/dev/" + dev, ro=False)
    os.makedirs(NEWROOT + "/proc", exist_ok=True)
    sh("mount", "-t", "proc", "-o", "nosuid,nodev,noexec", "proc", NEWROOT + "/proc")
    box = NEWROOT + "/sandbox"
    os.makedirs(box, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"mode=755,nosuid,nodev,size={cfg['sandbox_mb']}m", "tmpfs", box)
    sources = {name: os.path.join(cfg["staging"], name) for name in os.listdir(cfg["staging"])}
    for name, src in {**sources, **cfg["copy"]}.items():
        (shutil.copytree if os.path.isdir(src) else shutil.copy2)(src, os.path.join(box, name))
    for name in ("work", "home", "tmp"):
        os.makedirs(os.path.join(box, name), exist_ok=True)
        os.chown(os.path.join(box, name), uid, uid)
    for base, dirs, files in os.walk(os.path.join(box, "mplconfig")):
        for name in [base] + [os.path.join(base, n) for n in dirs + files]:
            os.chown(name, uid, uid)
    os.chmod(os.path.join(box, "job.json"), 0o644)
    os.chroot(NEWROOT)
    os.chdir("/sandbox/work")
    for which, value in cfg["limits"].items():
        resource.setrlimit(int(which), (value, value))
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SystemExit("could not drop privileges")
    os.execve(cfg["python"], [cfg["python"], "-s", "/sandbox/harness.py", "/sandbox/job.json", str(cfg["result_fd"])], cfg["env"])


if __name__ == "__main__":
    main()
