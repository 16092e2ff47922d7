"""The package's shape: small modules, public seams, imports at the top, one env-var prefix."""
import ast
import re
from pathlib import Path

import pytest

import d2lopt

PACKAGE = Path(d2lopt.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))
# Imports left inside functions, each for a reason: optional packages (Jupyter only), and
# d2lopt.airfoil, which `python -m d2lopt.airfoil` runs as a script (runpy warns when importing
# the package has already imported it).
DEFERRED = {("plotting.py", "matplotlib_inline"), ("animator.py", "IPython"),
            ("animator.py", "IPython.display"), ("data.py", "d2lopt")}


def _tree(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_modules_stay_under_300_lines(path):
    assert len(path.read_text(encoding="utf-8").splitlines()) < 300


def test_no_private_module_and_no_private_name_across_modules():
    assert [p.name for p in MODULES if p.name.startswith("_") and p.name != "__init__.py"] == []
    for path in MODULES:
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("d2lopt"):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path.name} imports {private} from {node.module}"


def test_imports_inside_functions_only_where_needed():
    found = set()
    for path in MODULES:
        for fn in ast.walk(_tree(path)):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import):
                        found |= {(path.name, a.name) for a in node.names}
                    elif isinstance(node, ast.ImportFrom):
                        found.add((path.name, node.module))
    assert found <= DEFERRED, sorted(found - DEFERRED)


def test_submodules_are_listed_and_load_on_first_use():
    names = {p.stem for p in MODULES if p.stem != "__init__"}
    assert names == d2lopt._SUBMODULES
    for name in names:
        assert name in d2lopt.__doc__, name
        assert getattr(d2lopt, name).__name__ == f"d2lopt.{name}"


def test_one_environment_variable_prefix():
    from d2lopt import exercises
    assert exercises.GRADE_LOG_ENV == "D2L_GRADE_LOG"
    names = set()
    for path in MODULES:
        names |= set(re.findall(r"\b(D2L\w*_[A-Z_]+)\b", path.read_text(encoding="utf-8")))
    assert names == {"D2L_DEVICE", "D2L_NO_ANIMATION", "D2L_CACHE", "D2L_GRADE_LOG"}


def test_mistakes_is_a_public_module_with_a_documented_api():
    from d2lopt import mistakes
    for name in mistakes.__all__:
        obj = getattr(mistakes, name)
        assert name in mistakes.__doc__ and (not callable(obj) or obj.__doc__), name
