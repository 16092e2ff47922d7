"""Sphinx configuration of the d2lopt book site (`make html` -> build/html/index.html).

tools/build_html.py stages this folder, the executed chapters/*.ipynb (never the paired .md
files) and data/README.md into build/site-src and runs Sphinx there. Notebooks are rendered from their stored
outputs: myst-nb executes nothing. Math is typeset by a copy of MathJax shipped inside the site,
so pages render with no network at all.
"""
import shutil
from pathlib import Path

project = "d2lopt"
author = "d2lopt contributors"
copyright = "d2lopt contributors; MIT License"
html_title = "d2lopt: Optimization Algorithms"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints", "conf.py"]

# Notebooks: stored outputs as they are; never re-executed.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # some sections start a cell at a deeper heading

# Theme: sidebar, previous/next, in-page contents, search; nothing loaded from elsewhere.
html_theme = "sphinx_book_theme"
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": True,
}
html_static_path = ["_static"]
html_css_files = ["d2lopt.css"]
html_copy_source = False        # the .ipynb files live in the repository; keep the site small
html_show_sourcelink = False
html_last_updated_fmt = None

# MathJax 3 from the sphinx-mathjax-offline package, SVG output: no web fonts to fetch (browsers
# refuse font files over file://), and only the files MathJax can ask for are copied.
mathjax_path = "mathjax/tex-svg.js"
mathjax3_config = {"svg": {"fontCache": "global"}}
_MATHJAX_PARTS = ["tex-svg.js", "input/tex/extensions", "ui", "a11y/assistive-mml.js",
                  "a11y/semantic-enrich.js", "a11y/complexity.js", "a11y/explorer.js"]


def _mathjax_source():
    import importlib.util
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.origin:
        raise RuntimeError("sphinx-mathjax-offline is missing: pip install -e '.[site]'")
    return Path(spec.origin).parent / "static" / "mathjax"


def _copy_mathjax(app, exc):
    if exc is not None or app.builder.format != "html":
        return
    src, dst = _mathjax_source(), Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part, dirs_exist_ok=True)
        else:
            (dst / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dst / part)


def _prune(app, exc):
    """Drop what no page loads: the themes' source maps and translation catalogues (~5 MB)."""
    if exc is not None or app.builder.format != "html":
        return
    static = Path(app.outdir) / "_static"
    for path in static.rglob("*.map"):
        path.unlink()
    shutil.rmtree(static / "locales", ignore_errors=True)


def setup(app):
    _mathjax_source()  # fail early, with the fix, when the package is missing
    app.connect("build-finished", _copy_mathjax)
    app.connect("build-finished", _prune)
