"""sinks/parquet.write_parquet: the encodings and zstd levels it asks of pyarrow name the file's
real (nested) columns, and the file reads back as written."""

import pyarrow as pa
import pyarrow.parquet as pq

from variant_etl.core.options import ParquetOptions
from variant_etl.sinks.parquet import ZSTD_LEVEL, ZSTD_STRING_LEVEL, _column_settings, write_parquet

CALL = pa.struct([("sample_id", pa.int64()), ("genotype", pa.list_(pa.int64())), ("phaseset", pa.string())])
TABLE = pa.table(
    {
        "reference_name": ["chr1", "chr1"],
        "start_position": pa.array([10, 20], pa.int64()),
        "end_position": pa.array([11, 21], pa.int64()),
        "quality": [30.5, None],
        "names": [["rs1"], []],
        "call": pa.array([[{"sample_id": 1, "genotype": [0, 1], "phaseset": "*"}], []], pa.list_(CALL)),
        "AF": pa.array([[0.5], [0.25]], pa.list_(pa.float64())),
    }
)


def test_levels_name_every_leaf_column_strings_at_level_1(tmp_path):
    path = tmp_path / "part.parquet"
    write_parquet(TABLE, str(path), ParquetOptions(output_dir=str(tmp_path)))
    assert pq.read_table(path).equals(TABLE)
    metadata = pq.ParquetFile(path).metadata
    columns = {
        metadata.row_group(0).column(i).path_in_schema: metadata.row_group(0).column(i)
        for i in range(metadata.num_columns)
    }
    encodings, dictionary, levels = _column_settings(TABLE.schema)
    # a path pyarrow does not know would go unused
    assert set(levels) == set(columns) == set(encodings) | set(dictionary)
    assert {path for path, level in levels.items() if level == ZSTD_STRING_LEVEL} == {
        "reference_name",
        "names.list.element",
        "call.list.element.phaseset",
    }
    assert levels["call.list.element.genotype.list.element"] == ZSTD_LEVEL
    assert {column.compression for column in columns.values()} == {"ZSTD"}
    assert "DELTA_BINARY_PACKED" in columns["start_position"].encodings
    assert "BYTE_STREAM_SPLIT" in columns["AF.list.element"].encodings
    assert "BYTE_STREAM_SPLIT" in columns["quality"].encodings
