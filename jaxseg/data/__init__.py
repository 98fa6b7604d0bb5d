"""Host-side input: tfds builders without TensorFlow, grain pipelines, joint transforms, synthetic
data.

The training engine calls :func:`dataset_info` and :func:`make_iterator` with ``config.data``;
:func:`list_datasets` names every dataset a config may select and :func:`describe` its options.
This package never imports ``jaxseg.models`` or ``jaxseg.train``.
"""

from jaxseg.data.pipeline import DataIterator, dataset_info, make_iterator, process_sample
from jaxseg.data.preparation import DatasetUnavailableError
from jaxseg.data.registry import (
  DatasetInfo,
  DatasetSpec,
  describe,
  get_builder,
  list_datasets,
  resolve_options,
)

__all__ = [
  'DataIterator',
  'DatasetInfo',
  'DatasetSpec',
  'DatasetUnavailableError',
  'dataset_info',
  'describe',
  'get_builder',
  'list_datasets',
  'make_iterator',
  'process_sample',
  'resolve_options',
]
