"""The element of every PCollection between ``ReadVcf`` and the writers: a ``VariantBatch``,
some thousands of variants as one Arrow RecordBatch in the output schema, with the key that
names the files its rows are written to and, once ``ShardVariants`` has routed it, its shard.

The contract, for a transform of one's own between two stages:
- keep ``key`` and ``shard`` (``element.with_batch(new_batch)`` does): the writers keep the
  rows of one key together, and write them into files of their own when the next key starts;
  batches of one key come one after another from the reader, and a writer writes each key's
  files as soon as another key's batch arrives (so memory holds about one key at a time).
  Batches of a key that arrive apart give more, smaller files, never wrong ones.
- keep the schema, hidden columns included: columns whose name starts with ``_`` are
  bookkeeping (``_origin``: the input file of a row, until a merge; ``_records``: the input
  records a merged row holds), which the writers drop. A writer refuses a batch whose columns
  differ from the schema of the stages before it, with a message naming the difference.
- rows may be removed (a filter) or added: the manifest counts what each stage saw, and
  reports the difference between what was read and what was written as changed by
  transforms of the pipeline's own.
"""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from variant_etl.core.errors import VariantEtlError


@dataclasses.dataclass(frozen=True)
class VariantBatch:
    batch: pa.RecordBatch
    key: str = ""  # names the output files of its rows (a read split, a merge bucket)
    shard: str | None = None  # the table_name_suffix ShardVariants routed the rows to

    @property
    def num_rows(self) -> int:
        return self.batch.num_rows

    def with_batch(self, batch: pa.RecordBatch | pa.Table) -> VariantBatch:
        """The same key and shard, other rows (a Table is joined into one batch)."""
        if isinstance(batch, pa.Table):
            batches = batch.to_batches()
            batch = pa.concat_batches(batches) if batches else pa.RecordBatch.from_pylist([], batch.schema)
        return dataclasses.replace(self, batch=batch)

    def filter(self, mask) -> VariantBatch:
        """The rows where ``mask`` (a boolean array, or an Arrow compute expression) is true."""
        return self.with_batch(self.batch.filter(mask))


def require_variant_batch(element, where: str) -> VariantBatch:
    """``element``, if it is a VariantBatch; else the error that says what a transform before
    ``where`` must yield."""
    if not isinstance(element, VariantBatch):
        raise VariantEtlError(
            f"{where}: expected VariantBatch elements, got {type(element).__name__}. Hint: a transform "
            "before it must yield element.with_batch(new_batch), which keeps key and shard."
        )
    return element
