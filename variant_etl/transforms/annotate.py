"""Annotate: the annotations of core/annotations.py applied to each batch."""

from __future__ import annotations

import apache_beam as beam

from variant_etl.core.annotations import Annotations, Annotator
from variant_etl.transforms.coders import VariantBatch


class _AnnotateFn(beam.DoFn):
    def __init__(self, annotations: Annotations, one_based: bool):
        self._annotations = annotations
        self._one_based = one_based

    def setup(self):
        self._annotator = Annotator(self._annotations, one_based=self._one_based)

    def process(self, element: VariantBatch):
        yield element.with_batch(self._annotator.apply(element.batch))

    def teardown(self):
        self._annotator.close()


class Annotate(beam.PTransform):
    """VariantBatch -> annotated VariantBatch; the annotation file is opened once per worker and
    read window by window through its index."""

    def __init__(self, annotations: Annotations, *, one_based: bool = False):
        super().__init__()
        self._fn = _AnnotateFn(annotations, one_based)

    def expand(self, batches):
        return batches | "Annotate" >> beam.ParDo(self._fn).with_output_types(VariantBatch)
