"""What `export` and `query` read from a Parquet output: the shard files, the variants that
overlap ``--genomic_regions`` and the calls of ``--sample_names``, as DuckDB SQL whose values
are always bound parameters (never pasted into the text)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import warnings

from variant_etl.core.errors import OutputError, VariantEtlError
from variant_etl.core.layout import MANIFEST, SAMPLE_INFO
from variant_etl.outputs import storage


@dataclasses.dataclass(frozen=True)
class Selection:
    files: tuple[str, ...]  # the shard files, in the manifest's order (sorted by position)
    where: str  # SQL condition over the variant columns, with ? placeholders
    params: tuple
    sample_ids: tuple[int, ...] | None  # None: every sample
    manifest: dict
    regions: tuple = ()  # region_bounds of --genomic_regions (none: every variant)

    @property
    def one_based(self) -> bool:
        return one_based(self.manifest)

    def call_filter(self) -> str:
        """The call column, keeping only the selected samples' calls."""
        if self.sample_ids is None:
            return "call"
        ids = ", ".join(str(int(i)) for i in self.sample_ids)  # integers from our own file
        # A list comprehension: DuckDB 2 refuses the `c -> ...` lambda, 1.1 and 1.2 lack `lambda c:`.
        return f"[c FOR c IN call IF list_contains([{ids}]::BIGINT[], c.sample_id)]"


def select(
    input_dir: str, regions: list[str], sample_names: list[str], *, by_start: bool = False
) -> Selection:
    manifest = read_manifest(input_dir)
    files = tuple(
        os.path.join(input_dir, entry["path"]) for shard in manifest["shards"] for entry in shard["files"]
    )
    clauses, params = [], []
    bounds_list = region_bounds(regions, one_based=one_based(manifest), by_start=by_start)
    for contig, bounds in bounds_list:
        if bounds is None:
            clauses.append("reference_name = ?")
            params.append(contig)
        else:
            clauses.append(
                "(reference_name = ? AND start_position <= ? AND end_position > ? AND start_position >= ?)"
            )
            params += [contig, *bounds]
    where = " OR ".join(clauses) if clauses else "TRUE"
    sample_ids = _sample_ids(input_dir, sample_names) if sample_names else None
    return Selection(files, where, tuple(params), sample_ids, manifest, tuple(bounds_list))


_ANY = -(2**63)


def region_bounds(
    regions: list[str], *, one_based: bool, by_start: bool = False
) -> list[tuple[str, tuple[int, int, int] | None]]:
    """(contig, None) for a whole contig, else (contig, (last start, end after, first start)).
    The variants that overlap START-END (1-based, inclusive) start at or before END and end
    after START - 1 (end_position is exclusive 0-based, or inclusive 1-based: the same number).
    ``by_start`` (``--genomic_regions_by_start_position``, gcp-variant-transforms' bq_to_vcf):
    the variants whose start_position, as stored, is in [START, END) (START alone: equal)."""
    shift = 0 if one_based else 1  # start_position is POS, or POS - 1
    out = []
    for text in regions:
        contig, start, end = parse_genomic_region(text, zero_allowed=by_start)
        if start is None:
            out.append((contig, None))
        elif by_start:
            out.append((contig, (max(end - 1, start), _ANY, start)))
        else:
            out.append((contig, (end - shift, start - 1, _ANY)))
    return out


_RANGE = re.compile(r"(.+):([0-9,]+)(?:-([0-9,]+))?")
_MEANT_AS_RANGE = re.compile(r".+:[0-9][^:]*")


def parse_genomic_region(text: str, *, zero_allowed: bool = False) -> tuple[str, int | None, int | None]:
    """``CHROM``, ``CHROM:POS`` or ``CHROM:START-END``, 1-based and inclusive as in bcftools
    (``zero_allowed``: a start_position range, which may start at 0)."""
    text = text.strip()
    if not text:
        raise VariantEtlError("--genomic_regions: a region must not be empty")
    match = _RANGE.fullmatch(text)
    if match:
        contig, start = match.group(1), int(match.group(2).replace(",", ""))
        end = int(match.group(3).replace(",", "")) if match.group(3) else start
    elif _MEANT_AS_RANGE.fullmatch(text):
        start = end = 0  # refused below: chr1:100- or chr1:1e6 meant a position, not a contig name
    else:
        return text, None, None
    if start < (0 if zero_allowed else 1) or end < start:
        raise VariantEtlError(
            f"--genomic_regions: bad region {text!r}; expected CHROM, CHROM:POS or CHROM:START-END "
            "with 1 <= START <= END (1-based, inclusive)"
        )
    return contig, start, end


def arrow_reader(result, batch_rows: int):
    """A DuckDB result as a pyarrow RecordBatchReader (DuckDB 2 renamed the method)."""
    if not hasattr(result, "to_arrow_reader"):
        return result.fetch_record_batch(batch_rows)
    with warnings.catch_warnings():  # the copy it warns of is one batch at a time
        warnings.simplefilter("ignore", UserWarning)
        return result.to_arrow_reader(batch_rows)


def one_based(manifest: dict) -> bool:
    """The output's start_position is POS as written (--use_1_based_coordinate)."""
    return manifest.get("coordinates", "").startswith("1-based")


def read_manifest(input_dir: str) -> dict:
    path = os.path.join(input_dir, MANIFEST)
    try:
        return json.loads(storage.read_text(path))
    except FileNotFoundError:
        raise OutputError(
            f"{input_dir}: no {MANIFEST}: not the output of a completed `variant_etl launch`. "
            "Hint: pass the --output_parquet_dir of a run that finished (it holds _SUCCESS)."
        ) from None
    except (OSError, ValueError) as err:
        raise OutputError(f"{path}: cannot be read ({err})") from None


def sample_table(input_dir: str):
    """The run's samples (sample_id, sample_name, file_path), as a pyarrow table."""
    return storage.read_table(os.path.join(input_dir, SAMPLE_INFO))


def _sample_ids(input_dir: str, names: list[str]) -> tuple[int, ...]:
    return sample_ids_named(sample_table(input_dir).to_pylist(), names, input_dir)


def sample_ids_named(rows: list[dict], names: list[str], where: str) -> tuple[int, ...]:
    """The sample ids of ``names`` in the sample_info ``rows`` of the output ``where``."""
    ids = []
    for name in names:
        found = [row["sample_id"] for row in rows if row["sample_name"] == name]
        if not found:
            known = sorted({row["sample_name"] for row in rows})
            raise VariantEtlError(
                f"--sample_names: no sample {name!r} in {where}. Hint: its samples are "
                f"{', '.join(known[:10])}{' ...' if len(known) > 10 else ''}"
            )
        ids += found
    return tuple(dict.fromkeys(ids))


def choose_samples(rows: list[dict], sample_ids: tuple[int, ...] | None) -> list[tuple[int, str]]:
    """(sample_id, name) of the sample columns, ordered by name then file path, from the
    sample_info rows; ``sample_ids``: those chosen (None: every one)."""
    ordered = sorted((row["sample_name"], row["file_path"], row["sample_id"]) for row in rows)
    chosen = {}
    for name, _, sample_id in ordered:
        if sample_ids is None or sample_id in sample_ids:
            chosen.setdefault(sample_id, name)
    names = list(chosen.values())
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise VariantEtlError(
            f"samples {', '.join(twice[:5])} come from several files with different sample ids "
            "(--sample_name_encoding WITH_FILE_PATH): a VCF cannot hold two columns of one name. "
            "Hint: export them one file at a time with --sample_names."
        )
    return list(chosen.items())
