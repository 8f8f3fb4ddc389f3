"""A read split: one unit of reading, decided before the pipeline and read by one worker."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ReadSplit:
    """A unit of reading: a whole file, or a byte range of a large uncompressed one.

    Splits with the same ``group`` (small files, one after another) are read by one task
    into one set of output files.
    """

    path: str
    samples: tuple[str, ...]
    # Definitions this file lacks or defines otherwise than the merged schema (from other
    # inputs, --representative_header_file, --allow_incompatible_records or inference).
    extra_header_lines: tuple[str, ...] = ()
    file_index: int = 0  # position of the file in the sorted input list
    sample_ids: tuple[int, ...] = ()
    # uncompressed text: the lines starting in [start, end); bgzip: the lines of BGZF blocks
    # [start, end) (core/bgzf.py)
    byte_range: tuple[int, int] | None = None
    part: int = 0  # number of this byte range in its file
    group: int = 0
