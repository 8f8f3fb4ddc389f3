"""The element type of the hot path, (key, Arrow RecordBatch), and its coder.

Without a declared type Beam pickles each batch to estimate element sizes for its metrics
(a sample of every PCollection, on every runner) and to move it between stages. With this
coder the estimate is ``nbytes`` (free) and batches that do move are Arrow IPC streams.
"""

from __future__ import annotations

import typing

import apache_beam as beam
import pyarrow as pa


class RecordBatchCoder(beam.coders.Coder):
    def encode(self, batch: pa.RecordBatch) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        return sink.getvalue().to_pybytes()

    def decode(self, data: bytes) -> pa.RecordBatch:
        return pa.ipc.open_stream(data).read_next_batch()

    def is_deterministic(self) -> bool:
        return True

    def estimate_size(self, batch: pa.RecordBatch) -> int:
        return batch.nbytes

    def to_type_hint(self):
        return pa.RecordBatch


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)

KeyedBatch = typing.Tuple[str, pa.RecordBatch]  # noqa: UP006 (Beam's type hints want typing.Tuple)

# A batch without columns ends a key: its writers may write the key's files now, instead of
# holding the rows until the end of the bundle (which may hold the whole input).
END_OF_KEY = pa.RecordBatch.from_pydict({})


def is_end_of_key(batch: pa.RecordBatch) -> bool:
    return batch.num_columns == 0
