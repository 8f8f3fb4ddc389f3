"""Coders of the hot path's elements: VariantBatch (core/batch.py) and Arrow RecordBatches.

Without a declared type Beam pickles each batch to estimate element sizes for its metrics
(a sample of every PCollection, on every runner) and to move it between stages. With these
coders the estimate is ``nbytes`` (free) and batches that do move are Arrow IPC streams.
"""

from __future__ import annotations

import struct

import apache_beam as beam
import pyarrow as pa

from variant_etl.core.batch import VariantBatch


def _ipc(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def _from_ipc(data) -> pa.RecordBatch:
    return pa.ipc.open_stream(data).read_next_batch()


class RecordBatchCoder(beam.coders.Coder):
    def encode(self, batch: pa.RecordBatch) -> bytes:
        return _ipc(batch)

    def decode(self, data: bytes) -> pa.RecordBatch:
        return _from_ipc(data)

    def is_deterministic(self) -> bool:
        return True

    def estimate_size(self, batch: pa.RecordBatch) -> int:
        return batch.nbytes

    def to_type_hint(self):
        return pa.RecordBatch


_HEAD = struct.Struct(">II")  # lengths of the key and the shard (0xFFFFFFFF: no shard)
_NO_SHARD = 0xFFFFFFFF


class VariantBatchCoder(beam.coders.Coder):
    """key and shard as UTF-8 behind their lengths, then the batch as an Arrow IPC stream."""

    def encode(self, element: VariantBatch) -> bytes:
        key = element.key.encode("utf-8")
        shard = b"" if element.shard is None else element.shard.encode("utf-8")
        head = _HEAD.pack(len(key), _NO_SHARD if element.shard is None else len(shard))
        return head + key + shard + _ipc(element.batch)

    def decode(self, data: bytes) -> VariantBatch:
        key_length, shard_length = _HEAD.unpack_from(data)
        at = _HEAD.size
        key = data[at : at + key_length].decode("utf-8")
        at += key_length
        shard = None
        if shard_length != _NO_SHARD:
            shard = data[at : at + shard_length].decode("utf-8")
            at += shard_length
        return VariantBatch(_from_ipc(memoryview(data)[at:]), key, shard)

    def is_deterministic(self) -> bool:
        return True

    def estimate_size(self, element: VariantBatch) -> int:
        return element.batch.nbytes

    def to_type_hint(self):
        return VariantBatch


beam.coders.registry.register_coder(pa.RecordBatch, RecordBatchCoder)
beam.coders.registry.register_coder(VariantBatch, VariantBatchCoder)
