"""The layers import one way (docs/architecture.md), read from the source of every module:

    cli -> pipeline -> api -> plan -> transforms, sinks -> filesystems -> core

``core`` (options included) imports only ``core`` and never Beam; ``transforms`` and ``sinks``
never import the planner, the CLI or each other's modules; the read-back side (``outputs``)
never imports Beam or anything that does; nothing imports upward, and no module imports
itself back through others. Imports inside functions count as much as those at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "variant_etl"

# layer of a module -> the layers (besides its own) it may import
ALLOWED = {
    "core": set(),
    "filesystems": {"core"},
    "transforms": {"core", "filesystems"},
    "sinks": {"core", "filesystems"},
    "plan": {"core", "filesystems"},
    "api": {"core", "filesystems", "plan", "transforms", "sinks"},
    "pipeline": {"core", "api", "plan"},
    "outputs": {"core"},
    "cli": {"core", "filesystems", "plan", "pipeline", "outputs", "sinks"},
    "__main__": {"cli"},
    "__init__": {"api", "core"},  # the public names, imported lazily
}
BEAM_FREE = {"core", "outputs", "__init__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def _imports() -> dict[str, set[str]]:
    """module -> every module it imports (ours and others'), anywhere in its source."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module
                names.add(target)
                # `from variant_etl.plan import rules` imports the submodule variant_etl.plan.rules
                for alias in node.names:
                    candidate = f"{target}.{alias.name}"
                    if (PACKAGE.parent / candidate.replace(".", "/")).with_suffix(".py").exists() or (
                        PACKAGE.parent / candidate.replace(".", "/") / "__init__.py"
                    ).exists():
                        names.add(candidate)
        found[module] = names
    return found


IMPORTS = _imports()
OURS = {
    module: {name for name in names if name.split(".")[0] == "variant_etl"}
    for module, names in IMPORTS.items()
}


@pytest.mark.parametrize("module", sorted(IMPORTS))
def test_each_module_imports_only_the_layers_below_it(module):
    layer = _layer(module)
    allowed = ALLOWED[layer] | {layer}
    wrong = sorted(name for name in OURS[module] if _layer(name) not in allowed and name != "variant_etl")
    assert not wrong, f"{module} ({layer}) imports {wrong}; {layer} may import {sorted(allowed)}"
    if layer in BEAM_FREE:
        beam = sorted(name for name in IMPORTS[module] if name.split(".")[0] == "apache_beam")
        assert not beam, f"{module} must not import Beam, imports {beam}"


def test_transforms_and_sinks_do_not_import_each_other():
    for module, names in OURS.items():
        layer = _layer(module)
        if layer in ("transforms", "sinks"):
            other = "sinks" if layer == "transforms" else "transforms"
            assert not [n for n in names if _layer(n) == other], f"{module} imports {other}"


def test_no_import_cycles():
    graph = {module: {name for name in names if name in OURS} for module, names in OURS.items()}
    for module, names in graph.items():  # a submodule imports its package's __init__ first
        if "." in module and module.rsplit(".", 1)[0] in graph and not module.endswith("__main__"):
            parent = module.rsplit(".", 1)[0]
            if parent != "variant_etl":
                names.add(parent)
    # the package's own __init__ imports its submodules only at attribute access (lazily)
    state: dict[str, int] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for name in sorted(graph[module]):
            if name == module or (name.startswith(module + ".") and module != "variant_etl"):
                continue  # a package importing its own submodules
            if state.get(name) == 1:
                cycle = path[path.index(name) :] + [name] if name in path else path + [name]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if state.get(name) is None:
                visit(name, [*path, name])
        state[module] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            visit(module, [module])


def test_the_layer_rules_see_every_module():
    """A new subpackage must be given its place above."""
    assert {_layer(module) for module in IMPORTS} <= set(ALLOWED)
    assert {
        "variant_etl.core.options",
        "variant_etl.api",
        "variant_etl.plan.rules",
        "variant_etl.cli.parser",
    } <= set(IMPORTS)


def test_export_query_and_validate_config_never_import_apache_beam(tmp_path):
    """Importing Beam takes seconds; the commands that run no pipeline must not pay for it."""
    import subprocess
    import sys
    import textwrap

    from tests.conftest import REPO, VT_VCF, run_cli

    out = tmp_path / "out"
    assert (
        run_cli(
            "launch", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), "--output_parquet_dir", str(out)
        ).returncode
        == 0
    )
    script = textwrap.dedent(
        f"""
        import sys
        from variant_etl import cli
        commands = [
            ["export", "--input_parquet_dir", {str(out)!r}, "--output_vcf", {str(tmp_path / "x.vcf.gz")!r}],
            ["query", "--input_parquet_dir", {str(out)!r}, "--genomic_regions", "20", "--sample_names", "NA00001"],
            ["validate-config"],
            ["report", "--input_parquet_dir", {str(out)!r}, "--output", {str(tmp_path / "r.html")!r}],
        ]
        for argv in commands:
            assert cli.main(argv) == 0, argv
        import google.cloud.bigquery  # what export --input_table uses (it needs the emulator to run)
        import variant_etl.outputs.bigquery_source
        print(sorted(m for m in sys.modules if m.split(".")[0] == "apache_beam"))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert (tmp_path / "x.vcf.gz.tbi").exists()
    # the same page, but for the name of the partitions CSV beside it (named after the page)
    page = (tmp_path / "r.html").read_text().replace("r_partitions.csv", "_report_partitions.csv")
    assert page == (out / "_report.html").read_text()
