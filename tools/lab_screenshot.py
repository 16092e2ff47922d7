"""Start JupyterLab headless on a free localhost port, open a chapter's .md in headless Chromium,
and save a screenshot: a maintainer's check that Lab shows the .md as a notebook (jupytext).

Usage: python tools/lab_screenshot.py [--doc 03-gd.md] [--out build/lab-screenshots/lab-md.png]

Run it from the repository's venv (`make lab-screenshot`), after `make setup` has installed the
Lab setting tools/lab/overrides.json. It prints whether the page shows notebook cells
(`.jp-Notebook .jp-Cell`) or a text editor, and exits non-zero when it is not a notebook.
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from site_check import find_chromium, chromium  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--doc", default="03-gd.md", help="file under chapters/ to open")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lab-screenshots" / "lab-md.png")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds Chromium lets Lab load")
    args = parser.parse_args(argv)
    browser = find_chromium()
    port, token = free_port(), "d2lopt-screenshot"
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as home:
        env["JUPYTER_RUNTIME_DIR"] = home
        # Workspaces in a fresh folder, so the layout is Lab's default, not a previous session's.
        # Lab serves a copy of the pair, so nothing it might save can touch the repository.
        root = Path(home) / "chapters"
        root.mkdir()
        stem = Path(args.doc).stem
        for name in (f"{stem}.md", f"{stem}.ipynb", "jupytext.toml"):
            if (ROOT / "chapters" / name).exists():
                shutil.copy2(ROOT / "chapters" / name, root / name)
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--LabApp.workspaces_dir={home}", f"--ServerApp.root_dir={root}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        log = open(Path(home) / "lab.log", "w")
        lab = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(120):
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                    break
                except OSError:
                    time.sleep(0.5)
            else:
                sys.exit("lab_screenshot: JupyterLab did not start:\n" + (Path(home) / "lab.log").read_text())
            url = f"{base}/lab/tree/{args.doc}?token={token}&reset"
            args.out.parent.mkdir(parents=True, exist_ok=True)
            budget = f"--virtual-time-budget={int(args.wait * 1000)}"
            chromium(browser, [budget, "--window-size=1400,1000", f"--screenshot={args.out}", url],
                     timeout=args.wait * 4 + 60, offline=False)
            dom = chromium(browser, [budget, "--window-size=1400,1000", "--dump-dom", url],
                           timeout=args.wait * 4 + 60, offline=False)
        finally:
            lab.terminate()
            try:
                lab.wait(timeout=20)
            except subprocess.TimeoutExpired:
                lab.kill()
            log.close()
    cells = len(re.findall(r'class="[^"]*\bjp-Cell\b', dom))
    notebook = "jp-NotebookPanel" in dom and cells > 0
    editor = "jp-FileEditor" in dom
    print(f"wrote {args.out}" if args.out.exists() else "no screenshot")
    print(f"lab_screenshot: {args.doc}: " + (f"opened as a notebook ({cells} cells)" if notebook
          else "opened in a text editor" if editor else "neither a notebook nor an editor found"))
    return 0 if notebook else 1


if __name__ == "__main__":
    sys.exit(main())
