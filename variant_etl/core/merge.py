"""Merge strategies on Arrow tables (see docs/merging.md for the rules).

Input rows carry the hidden ``_origin`` column (input file index << 40 | record
number), so every rule is decided by data, never by arrival order: the same
inputs give the same rows whatever the runner or the number of workers.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from variant_etl.core import schema as s

NONE = "NONE"
MOVE_TO_CALLS = "MOVE_TO_CALLS"
MERGE_WITH_NON_VARIANTS = "MERGE_WITH_NON_VARIANTS"
NON_REF_ALTS = ("<NON_REF>", "<*>")
SITE_KEYS = (s.REFERENCE_NAME, s.START_POSITION, s.END_POSITION, s.REFERENCE_BASES)
_ALT_KEY = "_alts"
_UNKNOWN_BASE = "N"
_NO_CUTS = np.zeros(0, np.int64)


def bucket_pieces(
    batch: pa.RecordBatch, bucket_size: int, *, spanning: bool
) -> list[tuple[tuple, pa.RecordBatch]]:
    """Cuts a batch into ((reference_name, bucket), rows) pieces, bucket = start // size.

    With ``spanning``, a row whose [start, end) reaches into later buckets is put in
    each of them too (non-variant blocks must meet the variants they cover).
    """
    names = batch.column(s.REFERENCE_NAME)
    starts = batch.column(s.START_POSITION).to_numpy()
    rows = np.arange(batch.num_rows)
    buckets = starts // bucket_size
    if spanning:
        rows, buckets = _buckets_reached(starts, batch.column(s.END_POSITION).to_numpy(), bucket_size)
    encoded = pc.dictionary_encode(names)
    codes = encoded.indices.to_numpy(zero_copy_only=False)[rows]
    dictionary = encoded.dictionary.to_pylist()
    order = np.lexsort((buckets, codes))
    codes, buckets, rows = codes[order], buckets[order], rows[order]
    change = np.flatnonzero((np.diff(codes) != 0) | (np.diff(buckets) != 0)) + 1
    pieces = []
    for chunk in np.split(np.arange(len(rows)), change):
        if len(chunk):
            key = (dictionary[codes[chunk[0]]], int(buckets[chunk[0]]))
            pieces.append((key, batch.take(pa.array(rows[chunk]))))
    return pieces


def is_non_variant(table: pa.Table) -> np.ndarray:
    """Rows that are reference blocks: no ALT, or only <NON_REF> / <*>."""
    alternate_bases = table.column(s.ALTERNATE_BASES).combine_chunks()
    alts = pc.struct_field(alternate_bases.values, s.ALT)
    # a NULL alt holds the Number=A values of an ALT '.' (records.py): no ALT either
    real = pc.and_(pc.invert(pc.is_in(alts, pa.array(NON_REF_ALTS))), pc.is_valid(alts))
    real = real.to_numpy(zero_copy_only=False)
    offsets = alternate_bases.offsets.to_numpy()
    real_per_row = (
        np.add.reduceat(np.append(real, False).astype(np.int64), offsets[:-1]) if len(offsets) > 1 else []
    )
    lengths = np.diff(offsets)
    real_per_row = np.where(lengths > 0, real_per_row, 0)
    if s.CALL not in table.column_names:  # without calls a block has nothing to give: keep it a row
        return np.zeros(table.num_rows, dtype=bool)
    has_calls = pc.list_value_length(table.column(s.CALL)).fill_null(0).to_numpy(zero_copy_only=False) > 0
    return (np.asarray(real_per_row) == 0) & has_calls


class SampleOrder:
    """Where each sample_id goes in a merged row's calls: by sample name, then file."""

    def __init__(self, ranked_ids: list[int]):
        ids = np.array(ranked_ids, dtype=np.uint64)
        order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        self._ranks = order.astype(np.int64)

    def ranks(self, sample_ids: np.ndarray) -> np.ndarray:
        if not len(self._ids):
            return sample_ids
        ids = sample_ids.astype(np.uint64)
        at = np.clip(np.searchsorted(self._ids, ids), 0, len(self._ids) - 1)
        known = self._ids[at] == ids
        return np.where(known, self._ranks[at], len(self._ids) + np.arange(len(ids)))


def move_to_calls(table: pa.Table, order: SampleOrder | None = None) -> pa.Table:
    """Rows of the same site (reference_name, start, end, REF, ALTs in order) become one.

    names and filter: sorted unions; quality: the maximum; call: all calls, sorted by
    sample (name, as ranked by ``order``; else sample_id) then input file; INFO columns
    and alternate_bases: from the first record (in input-file order) that has a value.
    """
    if table.num_rows == 0:
        return with_records(table.drop_columns([s.ORIGIN]), np.zeros(0, np.int64))
    keys = table.select(list(SITE_KEYS)).append_column(_ALT_KEY, _alt_key(table))
    keys = keys.append_column(s.ORIGIN, table.column(s.ORIGIN))
    by_site = pc.sort_indices(keys, sort_keys=[(c, "ascending") for c in keys.column_names])
    keys = keys.take(by_site)
    new_group = np.zeros(table.num_rows, dtype=bool)
    new_group[0] = True
    for name in (*SITE_KEYS, _ALT_KEY):
        column = keys.column(name).combine_chunks()
        if len(column) > 1:
            new_group[1:] |= pc.not_equal(column.slice(1), column.slice(0, len(column) - 1)).to_numpy(
                zero_copy_only=False
            )
    return _collapse(table, by_site.to_numpy(), new_group, order)


def with_records(table: pa.Table, records: np.ndarray) -> pa.Table:
    return table.append_column(s.RECORDS, pa.array(records, pa.int64()))


def _collapse(
    table: pa.Table, by_site: np.ndarray, new_group: np.ndarray, order: SampleOrder | None
) -> pa.Table:
    """One row per group of rows of a site: ``by_site`` lists the rows by site, then origin, and
    a group starts where ``new_group`` is True in that order. Each column is read where it lies
    (the table is not put in site order whole: a copy of every INFO value)."""
    n = table.num_rows
    starts = np.flatnonzero(new_group)
    group_of_row = np.empty(n, dtype=np.int64)
    group_of_row[by_site] = np.cumsum(new_group) - 1
    n_groups = len(starts)
    origins = table.column(s.ORIGIN).to_numpy()
    columns = {}
    for field in table.schema:
        name = field.name
        if name == s.ORIGIN:
            continue
        column = table.column(name).combine_chunks()
        if name in SITE_KEYS:
            columns[name] = column.take(pa.array(by_site[starts]))
        elif name in (s.NAMES, s.FILTER):
            columns[name] = _sorted_union(column, group_of_row, n_groups)
        elif name == s.QUALITY:
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)[by_site]
            columns[name] = pa.array(np.fmax.reduceat(values, starts), pa.float64(), from_pandas=True)
        elif name == s.CALL:
            columns[name] = _concat_calls(column, group_of_row, origins, n_groups, order)
        else:  # alternate_bases and INFO columns
            columns[name] = column.take(pa.array(by_site[_first_valid(column, by_site, starts)]))
    collapsed = pa.table(columns, schema=pa.schema([f for f in table.schema if f.name != s.ORIGIN]))
    return with_records(collapsed, np.diff(np.append(starts, n)))


def _alt_key(table: pa.Table) -> pa.Array:
    alternate_bases = table.column(s.ALTERNATE_BASES).combine_chunks()
    alts = pc.fill_null(pc.struct_field(alternate_bases.values, s.ALT), "")  # NULL alt: as ALT '.'
    return pc.binary_join(pa.ListArray.from_arrays(alternate_bases.offsets, alts), "\t")


def _sorted_union(column: pa.ListArray, group_of_row: np.ndarray, n_groups: int) -> pa.Array:
    lengths = pc.list_value_length(column).fill_null(0).to_numpy()
    values = pc.list_flatten(column)
    parent = np.repeat(group_of_row, lengths)
    pairs = pa.table({"g": parent, "v": values}).sort_by([("g", "ascending"), ("v", "ascending")])
    groups = pairs.column("g").to_numpy()
    items = pairs.column("v").combine_chunks()
    keep = np.ones(len(groups), dtype=bool)
    if len(groups) > 1:
        same_value = pc.equal(items.slice(1), items.slice(0, len(items) - 1)).to_numpy(zero_copy_only=False)
        keep[1:] = (groups[1:] != groups[:-1]) | ~same_value
    counts = np.bincount(groups[keep], minlength=n_groups)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), items.filter(pa.array(keep)))


def _concat_calls(
    column: pa.ListArray,
    group_of_row: np.ndarray,
    origins: np.ndarray,
    n_groups: int,
    order: SampleOrder | None,
) -> pa.Array:
    lengths = pc.list_value_length(column).fill_null(0).to_numpy()
    calls = pc.list_flatten(column)
    parent = np.repeat(group_of_row, lengths)
    origin_of_call = np.repeat(origins, lengths)
    sample = pc.struct_field(calls, s.SAMPLE_ID).to_numpy(zero_copy_only=False)
    if order is not None:
        sample = order.ranks(sample)
    call_order = np.lexsort((origin_of_call, sample, parent))  # by sample, then file and record
    counts = np.bincount(parent, minlength=n_groups)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), calls.take(pa.array(call_order)))


def _first_valid(column: pa.Array, by_site: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """In site order (``by_site``), the first row with a value in each group (starting at
    ``starts``; the group's first row if none)."""
    if column.null_count == 0:
        return starts
    n = len(by_site)
    valid = column.is_valid().to_numpy(zero_copy_only=False)[by_site]
    index = np.where(valid, np.arange(n), n)
    next_valid = np.minimum.accumulate(index[::-1])[::-1]
    pick = next_valid[starts]
    ends = np.append(starts[1:], n)
    return np.where(pick < ends, pick, starts)


def _buckets_reached(starts: np.ndarray, ends: np.ndarray, bucket_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, bucket) of every bucket (start // bucket_size) each row's [start, end) reaches."""
    first = starts // bucket_size
    last = (np.maximum(ends, starts + 1) - 1) // bucket_size
    counts = last - first + 1
    return np.repeat(np.arange(len(starts)), counts), np.repeat(first, counts) + positions_within(counts)


def positions_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... counts[i] - 1 for each i, one after another."""
    return np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)


def merge_buckets_with_non_variants(
    table: pa.Table, window: tuple[int, int], bucket_size: int, order: SampleOrder | None = None
) -> pa.Table:
    """merge_with_non_variants of each bucket of ``bucket_size`` bases in the window (a whole
    number of buckets, from a bucket's start) that a row reaches, on the rows that reach into
    it (what an index gives for the bucket): the rows of a window of one bucket each. Done as
    one merge of the window whose blocks are also cut at the edges of those buckets: the same
    pieces, rows and counts, without taking each bucket's rows out of the table."""
    lo, hi = window
    if table.num_rows == 0 or hi - lo <= bucket_size:
        return merge_with_non_variants(table, window, order)
    starts = table.column(s.START_POSITION).to_numpy()
    ends = np.maximum(table.column(s.END_POSITION).to_numpy(), starts + 1)
    # (the rows all reach into the window: clipped to it, they reach only its buckets)
    _, reached = _buckets_reached(np.maximum(starts, lo), np.minimum(ends, hi), bucket_size)
    buckets = np.unique(reached)
    edges = np.concatenate([buckets * bucket_size, np.minimum((buckets + 1) * bucket_size, hi)])
    return merge_with_non_variants(table, window, order, cuts=edges)


def merge_with_non_variants(
    table: pa.Table, window: tuple[int, int], order: SampleOrder | None = None, cuts: np.ndarray = _NO_CUTS
) -> pa.Table:
    """gVCF merge inside the window [start, end) of one contig (all rows on one contig).

    Variants are merged as by move_to_calls, then gain the calls of every non-variant
    block (of another sample or file) covering their start. Blocks are cut at every
    block edge, every variant start and start + 1, the window edges and ``cuts``; each
    piece becomes one row with the calls of all blocks covering it, except the one-base
    pieces at variant starts (those calls are in the variant row).
    """
    if table.num_rows == 0:
        return with_records(table.drop_columns([s.ORIGIN]), np.zeros(0, np.int64))
    lo, hi = window
    blocks_mask = is_non_variant(table)
    variants = move_to_calls(table.filter(pa.array(~blocks_mask)), order)
    variants = variants.filter(
        pc.and_(
            pc.greater_equal(variants.column(s.START_POSITION), lo),
            pc.less(variants.column(s.START_POSITION), hi),
        )
    )
    blocks = table.filter(pa.array(blocks_mask))
    if blocks.num_rows == 0:
        return variants
    # One entry per block call: its interval (clipped to the window) and the call.
    block_starts = np.maximum(blocks.column(s.START_POSITION).to_numpy(), lo)
    block_ends = np.minimum(
        np.maximum(blocks.column(s.END_POSITION).to_numpy(), blocks.column(s.START_POSITION).to_numpy() + 1),
        hi,
    )
    call_column = blocks.column(s.CALL).combine_chunks()
    lengths = pc.list_value_length(call_column).fill_null(0).to_numpy()
    calls = pc.list_flatten(call_column)
    entry_block = np.repeat(np.arange(blocks.num_rows), lengths)
    entry_start = block_starts[entry_block]
    entry_end = block_ends[entry_block]
    entry_file = (blocks.column(s.ORIGIN).to_numpy() >> s.ORIGIN_FILE_SHIFT)[entry_block]
    entry_sample = pc.struct_field(calls, s.SAMPLE_ID).to_numpy(zero_copy_only=False)
    inside = entry_start < entry_end
    variant_starts = variants.column(s.START_POSITION).to_numpy()
    edges = [entry_start[inside], entry_end[inside], variant_starts, variant_starts + 1, [lo, hi], cuts]
    bounds = np.unique(np.concatenate(edges))
    bounds = bounds[(bounds >= lo) & (bounds <= hi)]
    # Pieces each entry covers: bounds[i] for i in [first, last).
    first = np.searchsorted(bounds, entry_start)
    last = np.searchsorted(bounds, entry_end)
    counts = np.where(inside, last - first, 0)
    piece_entry = np.repeat(np.arange(len(entry_start)), counts)
    piece_index = np.repeat(first, counts) + positions_within(counts)

    # Each block record is counted once: in the row of its first piece, in its home bucket.
    original_starts = blocks.column(s.START_POSITION).to_numpy()
    home = original_starts >= lo
    home_first_piece = np.searchsorted(bounds, np.maximum(original_starts, lo))
    home_first_piece = np.where(home, home_first_piece, -1)

    entry_rank = order.ranks(entry_sample) if order is not None else entry_sample
    variant_rows = _variants_with_block_calls(
        variants,
        variant_starts,
        bounds,
        piece_index,
        piece_entry,
        entry_sample,
        entry_rank,
        entry_file,
        calls,
        order,
    )
    anchor_blocks = np.isin(bounds[np.clip(home_first_piece, 0, len(bounds) - 1)], variant_starts) & home
    if anchor_blocks.any():  # blocks starting at a variant are counted in that variant's row
        extra = np.searchsorted(variant_starts, original_starts[anchor_blocks])
        records = variant_rows.column(s.RECORDS).to_numpy().copy()
        np.add.at(records, extra, 1)
        variant_rows = variant_rows.set_column(
            variant_rows.column_names.index(s.RECORDS), s.RECORDS, pa.array(records, pa.int64())
        )
    anchor = np.isin(bounds[piece_index], variant_starts)
    piece_index, piece_entry = piece_index[~anchor], piece_entry[~anchor]
    block_rows = _block_rows(
        blocks, bounds, piece_index, piece_entry, entry_block, entry_rank, entry_file, calls, table.schema,
        np.where(anchor_blocks, -1, home_first_piece),
    )  # fmt: skip
    merged = pa.concat_tables([variant_rows, block_rows]) if block_rows.num_rows else variant_rows
    return merged.sort_by([(s.START_POSITION, "ascending"), (s.END_POSITION, "ascending")])


def _variants_with_block_calls(
    variants, variant_starts, bounds, piece_index, piece_entry, samples, ranks, files, calls, order
):
    if variants.num_rows == 0:
        return variants
    # Block entries covering each variant's start (the piece that begins there).
    piece_start = bounds[piece_index]
    at_variant = np.isin(piece_start, variant_starts)
    cover_entry = piece_entry[at_variant]
    cover_pos = piece_start[at_variant]
    variant_call_column = variants.column(s.CALL).combine_chunks()
    lengths = pc.list_value_length(variant_call_column).fill_null(0).to_numpy()
    variant_calls = pc.list_flatten(variant_call_column)
    variant_samples = pc.struct_field(variant_calls, s.SAMPLE_ID).to_numpy(zero_copy_only=False)
    owner = np.repeat(np.arange(variants.num_rows), lengths)
    # Every variant row at a position (the rows are in start order) gets the covering entries of
    # that position, entry by entry, unless the row already has a call of the entry's sample.
    first = np.searchsorted(variant_starts, cover_pos, side="left")
    rows_here = np.searchsorted(variant_starts, cover_pos, side="right") - first
    add_row = np.repeat(first, rows_here) + positions_within(rows_here)
    add_entry = np.repeat(cover_entry, rows_here)
    codes = np.unique(np.concatenate([variant_samples, samples[add_entry]]), return_inverse=True)[1]
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    called = owner * n_codes + codes[: len(owner)]  # (row, sample) pairs already in the rows
    fresh = ~np.isin(add_row * n_codes + codes[len(owner) :], called)
    add_row, add_entry = add_row[fresh], add_entry[fresh]
    all_owner = np.concatenate([owner, add_row])
    variant_ranks = order.ranks(variant_samples) if order is not None else variant_samples
    all_sample = np.concatenate([variant_ranks, ranks[add_entry]])
    all_file = np.concatenate([np.full(len(owner), -1), files[add_entry]])
    all_calls = pa.concat_arrays([variant_calls, calls.take(pa.array(add_entry, pa.int64()))])
    # variant calls keep their order (file order is already in it); added ones follow by sample, file
    call_order = np.lexsort((all_file, all_sample, all_owner))
    counts = np.bincount(all_owner, minlength=variants.num_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    new_calls = pa.ListArray.from_arrays(pa.array(offsets), all_calls.take(pa.array(call_order)))
    index = variants.column_names.index(s.CALL)
    return variants.set_column(index, variants.schema.field(s.CALL), new_calls)


def _block_rows(
    blocks, bounds, piece_index, piece_entry, entry_block, samples, files, calls, schema, counted_at
):
    out_schema = pa.schema([f for f in schema if f.name != s.ORIGIN]).append(pa.field(s.RECORDS, pa.int64()))
    if len(piece_index) == 0:
        return out_schema.empty_table()
    order = np.lexsort((files[piece_entry], samples[piece_entry], piece_index))
    piece_index, piece_entry = piece_index[order], piece_entry[order]
    new_piece = np.ones(len(piece_index), dtype=bool)
    new_piece[1:] = piece_index[1:] != piece_index[:-1]
    row_first = np.flatnonzero(new_piece)
    pieces = piece_index[row_first]
    n_rows = len(pieces)
    starts = bounds[pieces]
    ends = bounds[pieces + 1]
    # Row-level values from a block that starts where the piece starts (its REF is the base
    # there), else from the first block (by sample, file) of the piece.
    row_of_entry = np.cumsum(new_piece) - 1
    all_block_starts = blocks.column(s.START_POSITION).to_numpy()
    starts_here = all_block_starts[entry_block[piece_entry]] == bounds[piece_index]
    candidate = np.where(starts_here, np.arange(len(piece_entry)), len(piece_entry))
    first_here = np.full(n_rows, len(piece_entry))
    np.minimum.at(first_here, row_of_entry, candidate)
    chosen = np.where(first_here < len(piece_entry), first_here, row_first)
    source = entry_block[piece_entry[chosen]]
    source_rows = blocks.take(pa.array(source))
    reference = pc.if_else(
        pa.array(all_block_starts[source] == starts),
        source_rows.column(s.REFERENCE_BASES),
        pa.scalar(_UNKNOWN_BASE),
    )
    counts = np.bincount(row_of_entry, minlength=n_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    call_array = pa.ListArray.from_arrays(pa.array(offsets), calls.take(pa.array(piece_entry)))
    columns = {}
    for field in out_schema:
        name = field.name
        if name == s.START_POSITION:
            columns[name] = pa.array(starts, pa.int64())
        elif name == s.END_POSITION:
            columns[name] = pa.array(ends, pa.int64())
        elif name == s.REFERENCE_BASES:
            columns[name] = reference
        elif name == s.CALL:
            columns[name] = call_array
        elif name in (s.REFERENCE_NAME, s.ALTERNATE_BASES):
            columns[name] = source_rows.column(name)
        elif name in (s.NAMES, s.FILTER):
            columns[name] = pa.array([[]] * n_rows, field.type)
        elif name == s.RECORDS:
            counted = counted_at[counted_at >= 0]
            records = np.zeros(len(bounds), dtype=np.int64)
            np.add.at(records, counted, 1)
            columns[name] = pa.array(records[pieces], pa.int64())
        else:
            columns[name] = pa.nulls(n_rows, field.type)
    return pa.table(columns, schema=out_schema)
