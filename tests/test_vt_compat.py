"""gcp-variant-transforms command lines: its spelling of on/off options (`--append true`), its
renamed options, and its options with no effect or no feature here (a warning, or one error
line naming what to use instead)."""

from __future__ import annotations

import json

import duckdb
import pysam
import pytest

from tests.conftest import REAL, VT_VCF, run_cli
from variant_etl.cli.parser import VT_ABSENT, VT_IGNORED
from variant_etl.cli.rules import parse_args
from variant_etl.core.errors import VariantEtlError

VCF = str(VT_VCF / "valid-4.0.vcf")
TABLE = "my-project:dataset.table"
ON_OFF = [
    "allow_malformed_records", "allow_incompatible_records", "infer_headers", "use_1_based_coordinate",
    "include_call_name", "append", "update_schema_on_append", "keep_intermediate_files",
    "copy_quality_to_calls", "copy_filter_to_calls", "no_progress", "overwrite", "verbose", "dry_run",
]  # fmt: skip


def parsed(*args: str):
    args_, _ = parse_args(["plan", "--input_pattern", VCF, *args])
    return args_


@pytest.mark.parametrize("name", ON_OFF)
@pytest.mark.parametrize(
    "spelling, value",
    [((), True), (("true",), True), (("True",), True), (("=TRUE",), True), (("false",), False),
     (("=False",), False), (("1",), True), (("0",), False)],
)  # fmt: skip
def test_on_off_options_take_a_value_as_in_variant_transforms(name, spelling, value):
    option = f"--{name}" + (spelling[0] if spelling and spelling[0].startswith("=") else "")
    rest = [s for s in spelling if not s.startswith("=")]
    needs = {
        "append": ["--output_table", TABLE],
        "update_schema_on_append": ["--output_table", TABLE, "--append"],
        "keep_intermediate_files": ["--output_table", TABLE],
        "overwrite": ["--output_parquet_dir", "out"],
        "copy_quality_to_calls": ["--variant_merge_strategy", "MOVE_TO_CALLS"],
        "copy_filter_to_calls": ["--variant_merge_strategy", "MOVE_TO_CALLS"],
    }.get(name, [])
    args = parsed(*needs, option, *rest)
    assert getattr(args, name) is value


def test_an_on_off_value_that_is_neither_is_one_error_line():
    with pytest.raises(VariantEtlError, match=r"argument --append: expected true or false, got 'maybe'"):
        parsed("--output_table", TABLE, "--append", "maybe")
    result = run_cli("plan", "--input_pattern", VCF, "--allow_malformed_records", "sure")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: argument --allow_malformed_records: expected true or false, got 'sure'. "
        "Hint: variant-etl plan --help lists the options"
    )


def test_a_false_value_asks_for_nothing_that_needs_another_option():
    args = parsed("--append", "false", "--keep_intermediate_avro_files=false")  # no --output_table
    assert args.append is False and args.keep_intermediate_files is False
    with pytest.raises(VariantEtlError, match="--append only applies with --output_table"):
        parsed("--append", "true")


def test_every_variant_transforms_option_is_an_option_of_its_command_and_documented():
    """VT's options of vcf_to_bq, vcf_to_bq_preprocess and bq_to_vcf (tests/data/vt_options.json,
    from VT's options/variant_transform_options.py): each is an option of launch, preprocess or
    export (same, alias, warned or refused) and named in the migration doc."""
    from pathlib import Path

    from variant_etl.cli.parser import build_parser

    listed = json.loads((Path(__file__).parent / "data" / "vt_options.json").read_text())["options"]
    (commands,) = [a for a in build_parser()._actions if a.dest == "command"]
    doc = (Path(__file__).parent.parent / "docs" / "migrating_from_gcp_variant_transforms.md").read_text()
    for command, options in listed.items():
        ours = {name for action in commands.choices[command]._actions for name in action.option_strings}
        assert not [o for o in options if o not in ours], command
        assert not [o for o in options if f"`{o}`" not in doc], command
    assert sum(map(len, listed.values())) == 57


def test_renamed_options_are_aliases():
    assert parsed("--infer_undefined_headers", "true").infer_headers is True
    args = parsed("--output_table", TABLE, "--keep_intermediate_avro_files")
    assert args.keep_intermediate_files is True
    # the rules speak of the option it spells
    with pytest.raises(VariantEtlError, match="--keep_intermediate_files only applies with --output_table"):
        parsed("--keep_intermediate_avro_files", "True")


@pytest.mark.parametrize("name", sorted(VT_IGNORED))
def test_options_with_no_effect_here_are_accepted_with_a_warning(name, capsys):
    value = {"--num_bigquery_write_shards": ["20"], "--pipeline_mode": ["large"]}.get(name, ["x"])
    if VT_IGNORED[name][0].get("const") is True and name != "--auto_flags_experiment":
        value = ["true"]
    parsed(name, *value)
    err = capsys.readouterr().err
    assert err == f"warning: {name} is ignored: {VT_IGNORED[name][1]}\n"


@pytest.mark.parametrize("name", sorted(VT_ABSENT))
def test_options_whose_feature_is_missing_are_an_error_naming_the_alternative(name):
    kwargs, why, instead = VT_ABSENT[name]
    value = ["true"] if kwargs.get("const") is True else ["x"]
    result = run_cli("plan", "--input_pattern", VCF, name, *value)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"error: {name}: {why}. Hint: {instead}"
    if kwargs.get("const") is True:  # asking for what happens anyway is fine
        assert run_cli("plan", "--input_pattern", VCF, name, "false").returncode == 0


def test_a_variant_transforms_command_line_runs(tmp_path):
    """As its docs and issues write them (True/False values, renamed and deprecated options)."""
    out = tmp_path / "out"
    result = run_cli(
        "launch", "--input_pattern", str(VT_VCF / "invalid-4.0-POS-empty.vcf"),
        "--output_parquet_dir", str(out), "--allow_malformed_records", "True", "--infer_undefined_headers=true",
        "--optimize_for_large_inputs", "true", "--num_bigquery_write_shards", "20",
        "--keep_intermediate_avro_files", "False", "--split_alternate_allele_info_fields", "True",
        "--use_allele_num", "--no_progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        f"warning: --optimize_for_large_inputs is ignored: {VT_IGNORED['--optimize_for_large_inputs'][1]}",
        f"warning: --num_bigquery_write_shards is ignored: {VT_IGNORED['--num_bigquery_write_shards'][1]}",
        f"warning: --use_allele_num is ignored: {VT_IGNORED['--use_allele_num'][1]}",
    ]
    assert (out / "_SUCCESS").exists() and any((out / "_malformed").iterdir())


# --- appending to tables gcp-variant-transforms made --------------------------------------

# VT's schemas, as its code writes them: data/schema/sample_info.json, and the variant table its
# schema_converter makes of valid-4.0.vcf's header (legacy type names, descriptions).
VT_SAMPLE_INFO = [
    {"name": "sample_id", "type": "INTEGER", "mode": "NULLABLE", "description": "An Integer that uniquely identifies a sample."},
    {"name": "sample_name", "type": "STRING", "mode": "NULLABLE", "description": "Name of the sample as we read it from the VCF file."},
    {"name": "file_path", "type": "STRING", "mode": "NULLABLE", "description": "Full file path on GCS of the sample."},
    {"name": "ingestion_datetime", "type": "TIMESTAMP", "mode": "NULLABLE", "description": "Ingestion datetime (up to current minute) of samples."},
]  # fmt: skip
VT_VARIANTS_4_0 = [
    {"name": "reference_name", "type": "STRING", "mode": "NULLABLE"},
    {"name": "start_position", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "end_position", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "reference_bases", "type": "STRING", "mode": "NULLABLE"},
    {"name": "alternate_bases", "type": "RECORD", "mode": "REPEATED", "fields": [
        {"name": "alt", "type": "STRING", "mode": "NULLABLE"}]},
    {"name": "names", "type": "STRING", "mode": "REPEATED"},
    {"name": "quality", "type": "FLOAT", "mode": "NULLABLE"},
    {"name": "filter", "type": "STRING", "mode": "REPEATED"},
    {"name": "call", "type": "RECORD", "mode": "REPEATED", "fields": [
        {"name": "sample_id", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "genotype", "type": "INTEGER", "mode": "REPEATED"},
        {"name": "phaseset", "type": "STRING", "mode": "NULLABLE"},
        {"name": "GQ", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "DP", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "HQ", "type": "INTEGER", "mode": "REPEATED"}]},
    {"name": "NS", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "DP", "type": "INTEGER", "mode": "NULLABLE"},
    {"name": "AF", "type": "FLOAT", "mode": "REPEATED"},  # Number=. in this file
    {"name": "AA", "type": "STRING", "mode": "NULLABLE"},
    {"name": "DB", "type": "BOOLEAN", "mode": "NULLABLE"},
    {"name": "H2", "type": "BOOLEAN", "mode": "NULLABLE"},
]  # fmt: skip


@pytest.mark.bigquery
def test_append_to_tables_variant_transforms_made(bq):
    from google.cloud import bigquery

    from variant_etl.core.options import DEFAULT_SHARDING_CONFIG, bundled_config
    from variant_etl.core.sharding import load_sharding_config

    sharding = load_sharding_config(bundled_config(DEFAULT_SHARDING_CONFIG))
    tables = {f"vt__{s.suffix}": VT_VARIANTS_4_0 for s in sharding.shards} | {
        "vt__sample_info": VT_SAMPLE_INFO
    }
    # VT's --sample_lookup_optimized_output_table (libs/partitioning.py): the variant columns,
    # call.sample_id copied before call, and call one record (NULLABLE) instead of a list
    call = next(f for f in VT_VARIANTS_4_0 if f["name"] == "call")
    samples = [f for f in VT_VARIANTS_4_0 if f["name"] != "call"]
    samples[samples.index(next(f for f in samples if f["name"] == "NS")) : 0] = [
        call["fields"][0],
        {**call, "mode": "NULLABLE"},
    ]
    tables |= {f"vt_samples__{s.suffix}": samples for s in sharding.shards}
    for name, fields in tables.items():
        schema = [bigquery.SchemaField.from_api_repr(f) for f in fields]
        bq.client.create_table(bigquery.Table(f"test-project.{bq.dataset}.{name}", schema=schema))
    # what VT loaded before: one row of its sample_info
    bq.client.insert_rows_json(
        f"test-project.{bq.dataset}.vt__sample_info",
        [
            {
                "sample_id": 1,
                "sample_name": "OLD",
                "file_path": "gs://old.vcf",
                "ingestion_datetime": "2020-01-01 00:00:00",
            }
        ],
    )
    lookup = f"test-project:{bq.dataset}.vt_samples"
    result = bq.launch(
        "vt",
        VT_VCF / "valid-4.0.vcf",
        extra=("--append", "True", "--sample_lookup_optimized_output_table", lookup),
    )
    assert result.returncode == 0, result.stderr
    assert bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.vt__chr20")[0] == (4,)
    # VT's option_append_to_table_sample_optimized expects 3 and 12 rows for valid-4.0.vcf
    assert bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.vt_samples__chr19")[0] == (3,)
    assert bq.query(f"SELECT COUNT(*) FROM {bq.dataset}.vt_samples__chr20")[0] == (12,)
    assert bq.query(
        f"SELECT COUNT(*) FROM {bq.dataset}.vt_samples__chr20 WHERE sample_id = call.sample_id AND DP IS NOT NULL"
    )[0] == (12,)
    info = bq.query(f"SELECT sample_name, ingestion_datetime FROM {bq.dataset}.vt__sample_info ORDER BY 1")
    assert [name for name, _ in info] == ["NA00001", "NA00002", "NA00003", "OLD"]
    assert all(when is not None for _, when in info)
    # the schemas are VT's still
    found = bq.client.get_table(f"test-project.{bq.dataset}.vt__sample_info").schema
    assert [(f.name, f.field_type) for f in found] == [(f["name"], f["type"]) for f in VT_SAMPLE_INFO]


@pytest.mark.bigquery
def test_new_sample_info_tables_have_variant_transforms_types(bq):
    assert bq.launch("new", VT_VCF / "valid-4.0.vcf").returncode == 0
    found = bq.client.get_table(f"test-project.{bq.dataset}.new__sample_info").schema
    legacy = {"INT64": "INTEGER"}  # BigQuery reports its standard names so; the emulator as given
    assert [(f.name, legacy.get(f.field_type, f.field_type), f.mode) for f in found] == [
        (f["name"], f["type"], f["mode"]) for f in VT_SAMPLE_INFO
    ]


@pytest.mark.parametrize("name", ["homo_sapiens_default.yaml", "homo_sapiens_fixed_partitions.yaml"])
def test_the_bundled_sharding_configs_are_variant_transforms_own(name):
    """The same tables, regions and partition specs as VT's config of that name, so that
    appending to its tables partitions them as it did (e.g. chrY: an interval of 14,320)."""
    from tests.conftest import TESTDATA
    from variant_etl.core.options import bundled_config
    from variant_etl.core.sharding import load_sharding_config

    ours = load_sharding_config(bundled_config(name)).shards
    theirs = load_sharding_config(str(TESTDATA / "vt" / "default_configs" / name)).shards
    assert [(s.suffix, s.regions, s.is_residual, s.partitioning) for s in ours] == [
        (s.suffix, s.regions, s.is_residual, s.partitioning) for s in theirs
    ]
    chr_y = next(s for s in ours if s.suffix == "chrY")
    interval = int(chr_y.partitioning.to_bigquery()["range"]["interval"])
    assert interval == (14320 if name == "homo_sapiens_default.yaml" else 62340)


# --- files htslib reads --------------------------------------------------------------------

GT_4_4 = (
    "##fileformat=VCFv4.4\n##contig=<ID=1,length=1000>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD\tE\tF\n"
    "1\t10\t.\tA\tC\t.\t.\t.\tGT\t|.\t|./1\t/1|.\t|1/.\t|./.\t|0|1\n"
    "1\t20\t.\tA\tC,G\t.\t.\t.\tGT\t|2\t/.\t0/2\t.|1\t|1/1\t/0/1\n"
)


def test_vcf_4_4_genotypes_with_a_leading_phasing_mark_load_as_pysam_reads_them(tmp_path):
    import pyarrow.parquet as pq
    import pysam

    vcf = tmp_path / "gt44.vcf"
    vcf.write_text(GT_4_4)
    result = run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "out" / "chr1").glob("*.parquet")
    rows = pq.read_table(path).to_pylist()
    with pysam.VariantFile(str(vcf)) as f:
        calls = [list(record.samples.values()) for record in f]
        expected = [[s.allele_indices for s in samples] for samples in calls]
        phased = [[s.phased for s in samples] for samples in calls]
    for row, alleles, phases in zip(rows, expected, phased):
        assert [c["genotype"] for c in row["call"]] == [[-1 if a is None else a for a in g] for g in alleles]
        for call, alleles_, phase in zip(row["call"], alleles, phases):
            if len(alleles_) > 1:  # pysam calls every haploid genotype phased; we call none
                assert (call["phaseset"] == "*") == phase, (call, phase)


OMIT = (
    "##fileformat=VCFv4.2\n##contig=<ID=1,length=1000>\n"
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Depths">\n'
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tA\tB\tC\tD\tE\n"
    "1\t10\t.\tA\tC\t.\t.\t.\tGT:DP:AD\t./.\t./.:5\t0/1:.:.\t./.:.:.\t.:.:.,.\n"
    "1\t20\t.\tA\tC\t.\t.\t.\tGT\t./.\t.|.\t.\t./.\t./.\n"
    "1\t30\t.\tA\tC\t.\t.\t.\tGT:DP\t0/0:1\t./.\t1\t./.:0\t./.\n"
)


def test_omit_empty_sample_calls_leaves_out_the_calls_that_say_nothing(tmp_path):
    """As gcp-variant-transforms: a call is empty when no allele is known and every FORMAT
    value is missing; [., .] (two missing values) is a value list, not missing."""
    import pyarrow.parquet as pq

    vcf = tmp_path / "omit.vcf"
    vcf.write_text(OMIT)
    outputs = {}
    for name, extra in (("all", []), ("omitted", ["--omit_empty_sample_calls", "true"])):
        out, lookup = tmp_path / name, tmp_path / f"{name}-lookup"
        result = run_cli(
            "launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(out),
            "--sample_lookup_parquet_dir", str(lookup), *extra,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (path,) = (out / "chr1").glob("*.parquet")
        outputs[name] = pq.read_table(path).to_pylist()
        outputs[name + "-lookup"] = sum(
            pq.read_metadata(p).num_rows for p in (lookup / "chr1").glob("*.parquet")
        )
    names = {
        row["sample_id"]: row["sample_name"]
        for row in pq.read_table(tmp_path / "all" / "__sample_info.parquet").to_pylist()
    }
    kept = [[names[c["sample_id"]] for c in row["call"]] for row in outputs["omitted"]]
    assert kept == [["B", "C", "E"], [], ["A", "C", "D"]]
    assert [len(row["call"]) for row in outputs["all"]] == [5, 5, 5]
    # the rows are the same, but for their calls
    for a, b in zip(outputs["all"], outputs["omitted"]):
        assert {k: v for k, v in a.items() if k != "call"} == {k: v for k, v in b.items() if k != "call"}
        assert [
            c for c in a["call"] if names[c["sample_id"]] in [names[x["sample_id"]] for x in b["call"]]
        ] == b["call"]
    assert outputs["omitted-lookup"] == 6 and outputs["all-lookup"] == 15


def test_positions_beyond_2_31_load_as_htslib_reads_them(tmp_path):
    """htslib reads POS beyond 2^31 in text VCF (large plant and amphibian genomes); both our
    readers load it exactly, and INFO/END beyond 32 bits too (htslib keeps it as the record's end
    when POS is beyond 2^31 as well; we keep it whatever POS is)."""
    import pyarrow.parquet as pq
    import pysam

    from tests.core.test_textparse import plan_for, read_all

    vcf = tmp_path / "big.vcf"
    head = (
        "##fileformat=VCFv4.3\n##contig=<ID=1,length=5000000000>\n"
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">\n'
        '##INFO=<ID=SVLEN,Number=1,Type=Integer,Description="Length">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    records = (
        "1\t100\t.\tA\t<DEL>\t.\t.\tEND=3000000100\n"
        "1\t3000000000\t.\tA\tC\t.\t.\t.\n"
        "1\t3000000000\t.\tA\t<DEL>\t.\t.\tEND=3000000100;SVLEN=-100\n"
        "1\t4000000010\t.\tACG\tA\t.\t.\t.\n"
    )
    vcf.write_text(head + records)
    result = run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    (path,) = (tmp_path / "out" / "chr1").glob("*.parquet")
    rows = pq.read_table(path, columns=["start_position", "end_position"]).to_pylist()
    with pysam.VariantFile(str(vcf)) as f:
        stops = [(r.pos - 1, r.stop) for r in f]
    expected = [
        (99, 3000000100),
        (2999999999, 3000000000),
        (2999999999, 3000000100),
        (4000000009, 4000000012),
    ]
    assert [(r["start_position"], r["end_position"]) for r in rows] == expected
    assert stops[1:] == expected[1:]  # htslib's, but for the first: an END it reads as missing
    plan = plan_for(vcf, tmp_path / "plan")
    for fast in (True, False):  # the vectorized parser and the pysam reader agree
        table, letters, _ = read_all(plan, plan.splits[0], fast=fast)
        assert (
            not letters
            and list(zip(table["start_position"].to_pylist(), table["end_position"].to_pylist())) == expected
        )
    exported = tmp_path / "back.vcf"
    assert (
        run_cli(
            "export", "--input_parquet_dir", str(tmp_path / "out"), "--output_vcf", str(exported)
        ).returncode
        == 0
    )
    assert [
        line.split("\t")[7] for line in exported.read_text().splitlines() if not line.startswith("#")
    ] == ["END=3000000100", ".", "END=3000000100;SVLEN=-100", "."]
    vcf.write_text(head + "1\t3000000000\t.\tA\t<DEL>\t.\t.\tEND=2000000000\n")
    result = run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(tmp_path / "o2"))
    assert result.returncode == 0  # an END before POS is ignored, as htslib does: the end is REF's
    vcf.write_text(head + "1\t30\t.\tA\t<DEL>\t.\t.\tEND=9300000000000000000\n")
    result = run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(tmp_path / "o3"))
    assert result.returncode == 1 and "INFO/END: Type=Integer: expected 64-bit integers" in result.stderr


# --- bq_to_vcf's options on export --------------------------------------------------------


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    out = tmp_path_factory.mktemp("vt-export") / "out"
    result = run_cli(
        "launch", "--input_pattern", str(VT_VCF / "valid-4.0.vcf"), "--output_parquet_dir", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def test_export_takes_bq_to_vcf_options(loaded, tmp_path):
    ours, theirs = tmp_path / "ours.vcf", tmp_path / "theirs.vcf"
    result = run_cli("export", "--input_parquet_dir", str(loaded), "--output_vcf", str(ours))
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "export", "--input_parquet_dir", str(loaded), "--output_file", str(theirs),
        "--number_of_bases_per_shard", "100000", "--allow_incompatible_schema", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert theirs.read_text() == ours.read_text()
    assert result.stderr.splitlines()[:2] == [
        "warning: --number_of_bases_per_shard is ignored: a pipeline export cuts its pieces by the "
        "values they hold, not by bases",
        "warning: --allow_incompatible_schema is ignored: the header is the one launch wrote, or is made "
        "from the table schema without checks",
    ]
    refused = run_cli(
        "export", "--input_parquet_dir", str(loaded), "--output_file", str(theirs), "--preserve_sample_order"
    )
    assert refused.returncode == 2 and refused.stderr.startswith(
        "error: --preserve_sample_order: samples are"
    )
    fine = run_cli(
        "export",
        "--input_parquet_dir",
        str(loaded),
        "--output_file",
        str(theirs),
        "--preserve_sample_order",
        "False",
    )
    assert fine.returncode == 0, fine.stderr


def test_genomic_regions_by_start_position_as_bq_to_vcf(loaded, tmp_path):
    """bq_to_vcf's `--genomic_regions 20:S-E` took start_position (as stored) in [S, E); ours
    means the variants overlapping 1-based S-E, unless --genomic_regions_by_start_position."""
    import pyarrow.parquet as pq
    import pysam

    with pysam.VariantFile(str(VT_VCF / "valid-4.0.vcf")) as f:
        records = [(r.chrom, r.pos - 1, r.stop) for r in f]  # start_position (0-based), end
    region, (start, end) = "20:14370-1110696", (14370, 1110696)
    found = {}
    for flag in ([], ["--genomic_regions_by_start_position"]):
        target = tmp_path / f"q{len(flag)}.parquet"
        result = run_cli(
            "query",
            "--input_parquet_dir",
            str(loaded),
            "--genomic_regions",
            region,
            *flag,
            "--output",
            str(target),
        )
        assert result.returncode == 0, result.stderr
        found[bool(flag)] = sorted(row["start_position"] for row in pq.read_table(target).to_pylist())
    assert found[True] == sorted(s for c, s, _ in records if c == "20" and start <= s < end)
    assert found[False] == sorted(s for c, s, e in records if c == "20" and s <= end - 1 and e > start - 1)
    assert found[True] != found[False]  # the off-by-one VT scripts would hit
    vcf = tmp_path / "by_start.vcf"
    result = run_cli(
        "export", "--input_parquet_dir", str(loaded), "--output_file", str(vcf),
        "--genomic_regions", region, "--genomic_regions_by_start_position",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with pysam.VariantFile(str(vcf)) as f:
        assert sorted(r.pos - 1 for r in f) == found[True]


def test_alt_dot_with_a_number_a_value_loads_under_a_null_alt_and_exports_back(tmp_path):
    """Monomorphic sites written as ALT '.' with AC=0: the value has no ALT to go under, so it
    gets an alternate_bases entry whose alt is NULL; export writes the record back as it was."""
    import pyarrow.parquet as pq
    import pysam

    vcf = tmp_path / "mono.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=1000>\n"
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="ac">\n'
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="an">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "1\t10\t.\tA\t.\t.\t.\tAC=0;AN=4\n1\t20\t.\tA\t.\t.\t.\tAN=4\n1\t30\t.\tA\tC\t.\t.\tAC=1;AN=4\n"
    )
    out = tmp_path / "out"
    result = run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(out))
    assert result.returncode == 0, result.stderr
    (path,) = (out / "chr1").glob("*.parquet")
    assert [row["alternate_bases"] for row in pq.read_table(path).to_pylist()] == [
        [{"alt": None, "AC": 0}],
        [],
        [{"alt": "C", "AC": 1}],
    ]
    back = tmp_path / "back.vcf"
    result = run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(back))
    assert result.returncode == 0, result.stderr
    with pysam.VariantFile(str(vcf)) as a, pysam.VariantFile(str(back)) as b:
        assert [(r.pos, r.alts, dict(r.info)) for r in a] == [(r.pos, r.alts, dict(r.info)) for r in b]


def test_alt_dot_records_with_and_without_a_value_merge_into_one_site(tmp_path):
    import pyarrow.parquet as pq

    head = (
        "##fileformat=VCFv4.2\n##contig=<ID=1,length=1000>\n"
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="ac">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{}\n"
    )
    (tmp_path / "a.vcf").write_text(head.format("S1") + "1\t10\t.\tA\t.\t.\t.\tAC=0\tGT\t0/0\n")
    (tmp_path / "b.vcf").write_text(head.format("S2") + "1\t10\t.\tA\t.\t.\t.\t.\tGT\t0/0\n")
    for strategy in ("MOVE_TO_CALLS", "MERGE_WITH_NON_VARIANTS"):
        out = tmp_path / strategy
        result = run_cli(
            "launch", "--input_pattern", str(tmp_path / "*.vcf"), "--output_parquet_dir", str(out),
            "--variant_merge_strategy", strategy,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        (path,) = (out / "chr1").glob("*.parquet")
        (row,) = pq.read_table(path).to_pylist()
        assert row["alternate_bases"] == [{"alt": None, "AC": 0}] and len(row["call"]) == 2


def test_allow_malformed_records_matches_number_a_values_to_the_alts_as_variant_transforms(tmp_path):
    """VT's option_allow_malformed_records_alternate_mismatch: with --allow_malformed_records a
    Number=A value with too many or too few values loads, matched to the ALTs by index, and the
    manifest counts the records so corrected; without it the record is refused."""
    path = VT_VCF / "invalid-4.2-AF-mismatch.vcf"
    out = tmp_path / "out"
    result = run_cli("launch", "--input_pattern", str(path), "--output_parquet_dir", str(out),
                     "--allow_malformed_records")  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["totals"]["malformed"] == 0 and manifest["totals"]["records_written"] == 13
    assert manifest["totals"]["number_a_values_matched"] == 2
    assert manifest["inputs"][0]["number_a_values_matched"] == 2
    rows = duckdb.sql(
        f"SELECT start_position, [a.AF FOR a IN alternate_bases] FROM read_parquet('{out}/chr20/*.parquet') "
        "WHERE start_position IN (17329, 1234566) ORDER BY 1"
    ).fetchall()
    # 0.3 dropped; the second ALT's missing (values are htslib's 32-bit floats)
    assert rows == [(17329, [pytest.approx(0.017)]), (1234566, [pytest.approx(0.1), None])]
    refused = run_cli("launch", "--input_pattern", str(path), "--output_parquet_dir", str(tmp_path / "o2"))
    assert refused.returncode == 1 and "INFO/AF: Number=A: expected 1 value(s), one per ALT" in refused.stderr


@pytest.mark.parametrize(
    "source",
    [REAL / "cyvcf2" / "test.vcf.gz", REAL / "vcfpy" / "example-4.1-ploidy.vcf"],
    ids=lambda p: p.name,
)
def test_move_hom_ref_calls_as_variant_transforms(tmp_path, source):
    """Each call pysam reads as all reference alleles (0/0, 0|0, haploid 0) is in hom_ref_call
    (sample_id and name) and not in call; the others are in call as without the option; the
    sample-lookup layout has a row per remaining call; export writes the moved ones as 0/0."""
    import pyarrow.parquet as pq

    out, lookup = tmp_path / "out", tmp_path / "lookup"
    result = run_cli(
        "launch", "--input_pattern", str(source), "--output_parquet_dir", str(out), "--include_call_name",
        "--move_hom_ref_calls", "True", "--sample_lookup_parquet_dir", str(lookup),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    plain = tmp_path / "plain"
    assert (
        run_cli("launch", "--input_pattern", str(source), "--output_parquet_dir", str(plain)).returncode == 0
    )
    query = "SELECT * FROM read_parquet('{}/*/*.parquet') ORDER BY reference_name, start_position, reference_bases"
    rows, plain_rows = (duckdb.sql(query.format(d)).to_arrow_table().to_pylist() for d in (out, plain))
    with pysam.VariantFile(str(source)) as f:
        records = sorted(f, key=lambda r: (r.chrom, r.pos - 1, r.ref))
        names = list(f.header.samples)
    assert len(rows) == len(records) == len(plain_rows)
    moved_total = 0
    for row, plain_row, record in zip(rows, plain_rows, records):
        hom_ref = [
            n for n in names if record.samples[n]["GT"] and all(a == 0 for a in record.samples[n]["GT"])
        ]
        assert [c["name"] for c in row["hom_ref_call"]] == hom_ref
        assert [c["name"] for c in row["call"]] == [n for n in names if n not in hom_ref]
        kept = {c["sample_id"] for c in row["call"]}
        assert [c for c in plain_row["call"] if c["sample_id"] in kept] == [
            {k: v for k, v in c.items() if k != "name"} for c in row["call"]
        ]
        moved_total += len(hom_ref)
    assert moved_total > 0
    schema = pq.read_schema(next(out.glob("*/*.parquet")))
    assert schema.names.index("hom_ref_call") == schema.names.index("call") - 1
    assert str(schema.field("hom_ref_call").type.value_type) == "struct<sample_id: int64, name: string>"
    lookup_rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{lookup}/*/*.parquet')").fetchall()[0][0]
    assert lookup_rows == sum(len(r["call"]) for r in rows)
    exported = tmp_path / "back.vcf"
    assert run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(exported)).returncode == 0
    with pysam.VariantFile(str(exported)) as back:
        for record, original in zip(back, sorted(records, key=lambda r: (r.chrom, r.pos))):
            for name in names:
                gt = original.samples[name]["GT"]
                if gt and all(a == 0 for a in gt):
                    assert record.samples[name]["GT"] == (0, 0)


def test_integers_beyond_32_bits_load_as_written(tmp_path):
    """Integer INFO and FORMAT values beyond 32 bits, which htslib reads as missing (bcftools
    prints '.'), load exactly into the INT64 columns in both readers, and export writes them
    back; hts-specs' failed_body_info_integer_overflow.vcf (INT=2147483648) among them."""
    from tests.conftest import REAL
    from tests.core.test_textparse import plan_for, read_all

    vcf = tmp_path / "ints.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n##contig=<ID=1>\n"
        '##INFO=<ID=N,Number=1,Type=Integer,Description="d">\n'
        '##INFO=<ID=L,Number=.,Type=Integer,Description="d">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="d">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="d">\n'
        '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="d">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n"
        "1\t5\t.\tA\tC\t.\t.\tN=3000000000;L=1,-4000000000,.\tGT:DP:AD\t0/1:5000000000:1,2\t0/0:7:3,99999999999\n"
        "1\t6\t.\tA\tC\t.\t.\tN=1;L=2\tGT:DP:AD\t0/1:1:1,2\t0/0:2:3,4\n"
    )
    expected = [
        (3000000000, [1, -4000000000, None], [5000000000, 7], [[1, 2], [3, 99999999999]]),
        (1, [2], [1, 2], [[1, 2], [3, 4]]),
    ]
    plan = plan_for(vcf, tmp_path / "plan")
    for fast in (True, False):  # the vectorized parser and the pysam reader agree
        table, letters, _ = read_all(plan, plan.splits[0], fast=fast)
        assert not letters
        got = [
            (r["N"], r["L"], [c["DP"] for c in r["call"]], [c["AD"] for c in r["call"]])
            for r in table.to_pylist()
        ]
        assert got == expected
    out, back = tmp_path / "out", tmp_path / "back.vcf"
    assert run_cli("launch", "--input_pattern", str(vcf), "--output_parquet_dir", str(out)).returncode == 0
    assert run_cli("export", "--input_parquet_dir", str(out), "--output_vcf", str(back)).returncode == 0
    written = [line.split("\t")[7:] for line in back.read_text().splitlines() if not line.startswith("#")]
    assert written[0] == [
        "N=3000000000;L=1,-4000000000,.",
        "GT:DP:AD",
        "0/1:5000000000:1,2",
        "0/0:7:3,99999999999",
    ]
    spec = tmp_path / "spec"
    source = REAL / "hts-specs" / "failed_body_info_integer_overflow.vcf"
    assert (
        run_cli("launch", "--input_pattern", str(source), "--output_parquet_dir", str(spec)).returncode == 0
    )
    assert duckdb.sql(f"SELECT INT FROM read_parquet('{spec}/*/*.parquet')").fetchall() == [(2147483648,)]
