import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "variant_etl" / "core"


def test_core_never_imports_apache_beam():
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert not name.startswith(("apache_beam", "variant_etl.transforms", "variant_etl.sinks")), (
                    f"{path.name} imports {name}"
                )
