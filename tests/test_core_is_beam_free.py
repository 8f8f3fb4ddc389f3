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
    assert (tmp_path / "r.html").read_bytes() == (out / "_report.html").read_bytes()
