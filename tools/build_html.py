"""Build the book site: site/ (Sphinx + myst-nb + sphinx-book-theme) over the executed notebooks.

Usage: python tools/build_html.py [--out build/html] [chapters/*.ipynb ...]

The Sphinx sources are staged in build/site-src: site/ as it is, the given executed notebooks
(default: chapters/*.ipynb) under chapters/, and data/README.md, which the chapters link to. Only the .ipynb of each pair is staged, so
the paired .md is never read as a second copy, and the stored outputs are shown as they are
(nb_execution_mode = "off"). Files keep their modification times, so a rebuild is incremental.
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stage(site, notebooks, src):
    """Mirror `site` and `notebooks` into `src`, removing staged files that no longer exist."""
    wanted = {}
    for path in site.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            wanted[path.relative_to(site)] = path
    for nb in notebooks:
        wanted[Path("chapters") / nb.name] = nb
    wanted[Path("data") / "README.md"] = ROOT / "data" / "README.md"  # chapters link to it
    for old in list(src.rglob("*")) if src.exists() else []:
        if old.is_file() and old.relative_to(src) not in wanted:
            old.unlink()
    for rel, path in wanted.items():
        dst = src / rel
        if dst.exists() and dst.stat().st_mtime == path.stat().st_mtime \
                and dst.stat().st_size == path.stat().st_size:
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dst)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "html")
    parser.add_argument("--strict", action="store_true", help="turn Sphinx warnings into errors")
    parser.add_argument("notebooks", nargs="*", type=Path)
    args = parser.parse_args(argv)
    notebooks = sorted(args.notebooks or (ROOT / "chapters").glob("[0-9]*.ipynb"))
    bad = [str(nb) for nb in notebooks if nb.suffix != ".ipynb" or not nb.is_file()]
    if bad:
        parser.error(f"not an executed notebook: {', '.join(bad)}")
    build = args.out.resolve().parent
    src = build / "site-src"
    stage(ROOT / "site", notebooks, src)
    # A clean build: an incremental one keeps the figures of earlier builds in _images.
    for stale in (args.out, build / "doctrees"):
        shutil.rmtree(stale, ignore_errors=True)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-d", str(build / "doctrees"),
           str(src), str(args.out)]
    if args.strict:
        cmd[3:3] = ["-W", "--keep-going"]
    done = subprocess.run(cmd)
    if done.returncode == 0:
        print(f"wrote {args.out / 'index.html'}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
