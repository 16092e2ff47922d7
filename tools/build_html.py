"""Render the executed notebooks into a small static site: build/html/index.html + one page each.

Usage: python tools/build_html.py --out build/html chapters/*.ipynb
"""
import argparse
import html
import sys
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter


def title_of(nb, fallback):
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/html"))
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    rows = []
    for path in sorted(args.notebooks):
        nb = nbformat.read(path, as_version=4)
        body, _ = exporter.from_notebook_node(nb)
        page = path.with_suffix(".html").name
        (args.out / page).write_text(body, encoding="utf-8")
        rows.append(f'<li><a href="{page}">{html.escape(title_of(nb, path.stem))}</a></li>')
        print(f"wrote {args.out / page}")
    index = ("<!doctype html><html><head><meta charset='utf-8'><title>d2lopt</title>"
             "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto}</style></head>"
             "<body><h1>d2lopt: Optimization Algorithms</h1>"
             "<p>A companion to the Optimization Algorithms chapter of <i>Dive into Deep "
             "Learning</i>. Each page is an executed notebook.</p><ol>"
             + "\n".join(rows) + "</ol></body></html>")
    (args.out / "index.html").write_text(index, encoding="utf-8")
    print(f"wrote {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
