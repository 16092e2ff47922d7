"""Read a chapter's own functions from its .md source, for the tests that recompute its claims.

The tests of a chapter call the notebook's helpers by name, so a change to one that breaks a
claim of the text fails there, not only as an nbval diff of a stored output.
"""
import ast
from pathlib import Path

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"


def code_cells(text):
    """The sources of the ```{code-cell} blocks of a MyST notebook, in order."""
    cells, inside = [], None
    for line in text.splitlines():
        if line.startswith("```{code-cell}"):
            inside = []
        elif line.startswith("```") and inside is not None:
            cells.append("\n".join(inside))
            inside = None
        elif inside is not None:
            inside.append(line)
    return cells


def notebook_functions(name, namespace, *, graded=False):
    """The top-level functions ``chapters/<name>.md`` defines, executed in ``namespace``.

    Only ``def`` statements run (no cell's other code); ``namespace`` supplies the names they
    use (``torch``, ``math``, ...). Cells with nbgrader metadata are skipped, or with
    ``graded=True`` read too, so that the reference solutions are tested as well.
    """
    source = CHAPTERS / f"{name}.md"
    ns = dict(namespace)
    for cell in code_cells(source.read_text(encoding="utf-8")):
        if cell.lstrip().startswith("---"):            # nbgrader cells: a metadata header
            if not graded:
                continue
            cell = cell.split("---", 2)[2]
        lines = [ln for ln in cell.splitlines() if not ln.startswith("%")]
        for node in ast.parse("\n".join(lines)).body:
            if isinstance(node, ast.FunctionDef):
                exec(compile(ast.Module([node], []), str(source), "exec"), ns)
    return ns
