import numpy as np
import pyarrow as pa
import pytest

from tests.conftest import REPO, TESTDATA
from variant_etl.core.errors import ShardingConfigError
from variant_etl.core.sharding import DROPPED, Region, load_sharding_config, parse_region

VT_CONFIGS = TESTDATA / "vt"


def config(text: str):
    return load_sharding_config("test.yaml", text=text)


def item(suffix, regions, end="1,000"):
    lines = "\n".join(f'      - "{r}"' for r in regions)
    return (
        f'- output_table:\n    table_name_suffix: "{suffix}"\n    regions:\n{lines}\n'
        f"    partition_range_end: {end}\n"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("chr1", Region("chr1")),
        ("chr1:0-1,000,000", Region("chr1", 0, 1_000_000)),
        ("3:500,000-1,000,000", Region("3", 500_000, 1_000_000)),
        ("HLA-A*01:01:01:01", Region("HLA-A*01:01:01:01")),  # colons in a contig name
        (" chrX ", Region("chrX")),
    ],
)
def test_parse_region(text, expected):
    assert parse_region(text) == expected


@pytest.mark.parametrize("text", ["chr1:100-50", "chr1:5-5", "chr1:-5", "chr1:a-5", ""])
def test_bad_region_syntax(text):
    with pytest.raises(ShardingConfigError, match="region"):
        load_sharding_config("t.yaml", text=item("a", [text]))


@pytest.mark.parametrize(
    "text, message",
    [
        (item("a", ["chr1"]) + item("a", ["chr2"]), r"item 2 \('a'\): table_name_suffix duplicates item 1"),
        (item("a", ["chr1"]) + item("A", ["chr2"]), "duplicates item 1"),
        (
            item("a", ["chr1"]) + item("b", ["chr1:0-10"]),
            r"region 'chr1:0-10' overlaps region 'chr1' of item 1",
        ),
        (item("a", ["1:0-100"]) + item("b", ["1:99-200"]), "overlaps"),
        (item("a", ["chr1", "chr1"]), "overlaps"),
        (item("a", ["residual"]) + item("b", ["residual"]), "items 1, 2 are all 'residual'"),
        (item("a", ["residual", "chr1"]), "'residual' region must be the item's only region"),
        (
            item("a", ["chr1"], end="abc"),
            r"item 1 \('a'\): partition_range_end must be a positive integer, got 'abc'",
        ),
        (item("a", ["chr1"], end="0"), "partition_range_end must be a positive integer"),
        (item("a", ["chr1"], end="-5"), "partition_range_end must be a positive integer"),
        (
            '- output_table:\n    table_name_suffix: "a"\n    regions: ["chr1"]\n',
            "partition_range_end is missing",
        ),
        (
            '- output_table:\n    regions: ["chr1"]\n    partition_range_end: 5\n',
            "table_name_suffix is missing",
        ),
        (item("a-b", ["chr1"]), "may only contain letters, digits and '_'"),
        # Suffixes become directory names and BigQuery table names.
        (item("../x", ["chr1"]), r"item 1 \('../x'\): table_name_suffix may only contain letters"),
        (item("a/b", ["chr1"]), "may only contain letters, digits and '_'"),
        (item("..", ["chr1"]), "may only contain letters, digits and '_'"),
        (item("chr1\\n", ["chr1"]), "may only contain letters, digits and '_'"),  # YAML "\n": a newline
        (item("a b", ["chr1"]), "may only contain letters, digits and '_'"),
        (item("a`;x", ["chr1"]), "may only contain letters, digits and '_'"),
        (item("chr\u00e9", ["chr1"]), "may only contain letters, digits and '_'"),
        (item("x" * 961, ["chr1"]), r"at most 960 characters"),
        (item("", ["chr1"]), "table_name_suffix is missing or empty"),
        (item("  ", ["chr1"]), "table_name_suffix is missing or empty"),
        (
            '- output_table:\n    table_name_suffix: "a"\n    regions: []\n    partition_range_end: 5\n',
            "regions must be a non-empty list",
        ),
        (
            '- output_table:\n    table_name_suffix: "a"\n    regions: ["x"]\n    partition_range_end: 5\n    colour: red\n',
            "unknown key",
        ),
        ("- foo: 1\n", "single key 'output_table'"),
        ("{}", "non-empty list"),
        ("- [unclosed", "not valid YAML"),
    ],
)
def test_validation_messages(text, message):
    with pytest.raises(ShardingConfigError, match=message):
        config(text)


def test_python_tags_are_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    text = f'- !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(ShardingConfigError) as err:
        config(text)
    message = str(err.value)
    assert message.startswith("test.yaml: not valid YAML (could not determine a constructor for the tag")
    assert "python/object/apply:os.system" in message and "\n" not in message
    assert not marker.exists()


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ShardingConfigError, match="cannot read the sharding config"):
        load_sharding_config(str(tmp_path / "nope.yaml"))


def test_partition_spec_from_comma_number():
    shard = config(item("chr1", ["chr1"], end="249,240,615")).shards[0]
    assert (shard.partitioning.interval, shard.partitioning.end) == (62_340, 249_297_660)


def lookup(cfg, names, starts):
    return cfg.shard_indices(pa.array(names), np.array(starts, dtype=np.int64)).tolist()


def test_lookup_whole_contigs_ranges_residual_and_dropped():
    text = (
        item("part1", ["chr1:0-1,000,000"])
        + item("rest", ["residual"])
        + item("part2", ["chr1:1,000,000-2,000,000"])
        + item("chr2", ["chr2", "2"])
    )
    cfg = config(text)
    names = ["chr1", "chr1", "chr1", "chr1", "chr2", "2", "Chr2", "chr3"]
    starts = [0, 999_999, 1_000_000, 2_000_000, 5, 5, 5, 5]
    # ranges are half-open; names are case-sensitive; unmatched rows go to the residual
    assert lookup(cfg, names, starts) == [0, 0, 2, 1, 3, 3, 1, 1]
    no_residual = config(item("part1", ["chr1:0-10"]) + item("chr2", ["chr2"]))
    assert lookup(no_residual, ["chr1", "chr1", "chr2", "chrM"], [9, 10, 0, 0]) == [0, DROPPED, 1, DROPPED]


@pytest.mark.parametrize("name", ["homo_sapiens_default.yaml", "homo_sapiens_fixed_partitions.yaml"])
def test_bundled_configs(name):
    cfg = load_sharding_config(str(REPO / "sharding_configs" / name))
    assert [s.suffix for s in cfg.shards] == [f"chr{c}" for c in [*range(1, 23), "X", "Y"]] + ["residual"]
    assert cfg.residual_index == 24
    assert lookup(cfg, ["chr1", "1", "chrX", "x", "chrM", "MT", "GL000192.1"], [0] * 7) == [
        0,
        0,
        22,
        22,
        24,
        24,
        24,
    ]
    chr1 = cfg.shards[0]
    assert chr1.partition_range_end == 249_240_615  # gcp-variant-transforms' value
    if name == "homo_sapiens_fixed_partitions.yaml":
        assert {s.partitioning for s in cfg.shards} == {chr1.partitioning}


@pytest.mark.parametrize(
    "name, shards, residual",
    [
        ("default_configs/homo_sapiens_default.yaml", 25, 24),
        ("sharding_configs/integration_with_residual.yaml", 11, 10),
        ("sharding_configs/integration_without_residual.yaml", 7, None),
        ("sharding_configs/residual_in_middle.yaml", 5, 1),
        ("sharding_configs/residual_missing.yaml", 4, None),
    ],
)
def test_gcp_variant_transforms_configs_load_unchanged(name, shards, residual):
    cfg = load_sharding_config(str(VT_CONFIGS / name))
    assert (len(cfg.shards), cfg.residual_index) == (shards, residual)
