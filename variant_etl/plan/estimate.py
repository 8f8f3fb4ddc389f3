"""Estimates of the records of each input and the rows of each shard, before any reading."""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np
from apache_beam.io.filesystems import FileSystems

from variant_etl.core.errors import VariantEtlError
from variant_etl.core.estimate import (
    PREFIX_BYTES,
    RecordEstimate,
    contig_lengths,
    estimate_bcf_prefix,
    estimate_from_index,
    estimate_from_text_prefix,
    parse_index,
)
from variant_etl.core.header import VcfHeader
from variant_etl.core.regions import index_of
from variant_etl.core.source import detect_format
from variant_etl.filesystems import Prefetch, open_binary
from variant_etl.plan.model import Plan, PlanEstimate


def estimate_plan(plan: Plan) -> PlanEstimate:
    """Cheap: reads each input's index, or a few MB of its records, never a whole large file."""
    sizes = plan.sizes or (None,) * len(plan.headers)
    with Prefetch([h.path for h in plan.headers], head_bytes=PREFIX_BYTES) as files:
        inputs = {h.path: estimate_input(h, size, files) for h, size in zip(plan.headers, sizes)}
    points: dict[str, list] = {}
    spans = []
    for found in inputs.values():
        for contig, starts in found.points.items():
            points.setdefault(contig, []).append(starts)
        spans += [(s.contig, s.start, s.end, s.rows) for s in found.spans]
    joined = {contig: np.concatenate(parts) for contig, parts in points.items()}
    rows, dropped = plan.sharding.estimate_rows(joined, spans)
    if plan.merge.strategy == "NONE":
        counts = "a row per input record (no merging)"
    else:
        counts = (
            f"input records, not merged rows: {plan.merge.strategy} makes one row of the records "
            "of a site across files, so a shard gets at most this many rows"
        )
    return PlanEstimate(inputs, rows, dropped, counts)


def estimate_input(
    header: VcfHeader, size: int | None = None, files: Prefetch | None = None
) -> RecordEstimate:
    path = header.path
    opener, exists = (files.open, files.exists) if files else (open_binary, FileSystems.exists)
    index = index_of(path, exists)
    if index is not None:
        try:
            with open_binary(index) as f:
                data = gzip.decompress(f.read())
            return estimate_from_index(parse_index(data, header.contigs), os.path.basename(index))
        except (OSError, EOFError, ValueError, struct.error, zlib.error):
            pass  # an index we cannot read: the records tell
    try:
        fmt = detect_format(path, opener)
        if size is None:
            size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if fmt == "bcf":
            if "://" in path:
                return RecordEstimate(0.0, False, "unknown (an unindexed remote BCF)", {})
            return estimate_bcf_prefix(path, size)
        with opener(path) as raw:
            return estimate_from_text_prefix(raw, fmt=fmt, size=size, lengths=contig_lengths(header.lines))
    except (OSError, ValueError, VariantEtlError) as err:  # the reader will say what is wrong
        return RecordEstimate(0.0, False, f"unknown ({err})", {})
