"""The base of the segmentation builders that read an official release from ``manual_dir``.

VOC 2012 (with SBD) and ADE20K share it: the skip-corrupt counter, the download switch, the
version, and the features (a JPEG ``image``, a PNG class-index mask under :attr:`MASK_KEY`, the
``image_id``). Each subclass finds its files and generates its examples.
"""

from __future__ import annotations

from typing import ClassVar

import tensorflow_datasets as tfds

from jaxseg.data.builders._common import SkipCounter


class ManualSegmentationBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """A tfds builder of an image + class-mask release read from ``manual_dir`` (or downloaded).

  Args:
    skip_corrupt: skip undecodable images (counted and logged) instead of raising.
    allow_download: download the release when the manual files are absent (where it can).
    **kwargs: ``tfds.core.GeneratorBasedBuilder``'s (``data_dir``, ``file_format``, ...).
  """

  VERSION = tfds.core.Version('1.0.0')
  # Not in a tfds package: no checksums file to find (tfds would search with importlib_resources).
  code_path = None
  MASK_KEY: ClassVar[str] = 'mask'  # the mask feature's name ('annotation' in tfds's ADE20K)
  CLASS_NAMES: ClassVar[tuple[str, ...]] = ()  # stored as metadata when given

  def __init__(self, *, skip_corrupt: bool = False, allow_download: bool = False, **kwargs):
    self._skip = SkipCounter(skip_corrupt)
    self._allow_download = allow_download
    super().__init__(**kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    metadata = (
      tfds.core.MetadataDict(class_names=list(self.CLASS_NAMES)) if self.CLASS_NAMES else None
    )
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(None, None, 3), encoding_format='jpeg'),
          self.MASK_KEY: tfds.features.Image(shape=(None, None, 1), encoding_format='png'),
          'image_id': tfds.features.Text(),
        }
      ),
      metadata=metadata,
    )
