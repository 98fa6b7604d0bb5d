"""tfds builders of the synthetic datasets: ``shapes_segmentation`` and ``synthetic_saliency``.

They go through the same ``download_and_prepare`` / ArrayRecord / ``data_source`` path as the real
datasets, so the whole input pipeline is exercised offline. Every size, count and seed is a field
of the builder config, and the config's name encodes them, so two different settings are cached
side by side in ``data_dir`` and never mistaken for each other.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxseg.data import synthetic
from jaxseg.data.builders._common import GeneratedOffline, encode_png

__all__ = ['ShapesConfig', 'ShapesSegmentation', 'SaliencyConfig', 'SyntheticSaliency']


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
  """Settings of ``shapes_segmentation`` (see :func:`jaxseg.data.synthetic.shapes_example`)."""

  image_size: int = 64
  num_shape_classes: int = 3
  max_shapes: int = 3
  num_train: int = 2000
  num_test: int = 200
  seed: int = 0


def shapes_config(**kwargs) -> ShapesConfig:
  """A :class:`ShapesConfig` whose name encodes every setting (its cache directory)."""
  c = ShapesConfig(name='tmp', **kwargs)
  name = (
    f's{c.image_size}_k{c.num_shape_classes}_m{c.max_shapes}_n{c.num_train}_'
    f't{c.num_test}_seed{c.seed}'
  )
  return dataclasses.replace(c, name=name)


class ShapesSegmentation(GeneratedOffline, tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Circles, rectangles and triangles on textured backgrounds, with class masks."""

  name = 'shapes_segmentation'
  # Not in a tfds package: no checksums file to find (tfds would search with importlib_resources).
  code_path = None
  VERSION = tfds.core.Version('1.0.0')

  def _info(self) -> tfds.core.DatasetInfo:
    c = self.builder_config
    s = c.image_size
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(s, s, 3), encoding_format='png'),
          'mask': tfds.features.Image(shape=(s, s, 1), encoding_format='png'),
        }
      ),
      metadata=tfds.core.MetadataDict(num_classes=c.num_shape_classes + 1),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    c = self.builder_config
    return {
      'train': self._generate_examples('train', c.num_train),
      'test': self._generate_examples('test', c.num_test),
    }

  def _generate_examples(self, split, count):
    c = self.builder_config
    for index in range(count):
      rng = synthetic.example_rng(c.seed, split, index)
      image, mask = synthetic.shapes_example(
        rng, image_size=c.image_size, num_shape_classes=c.num_shape_classes, max_shapes=c.max_shapes
      )
      yield index, {'image': encode_png(image), 'mask': encode_png(mask)}


@dataclasses.dataclass(eq=False)
class SaliencyConfig(tfds.core.BuilderConfig):
  """Settings of ``synthetic_saliency`` (see :func:`jaxseg.data.synthetic.saliency_example`)."""

  image_size: int = 64
  max_objects: int = 3
  num_fixations: int = 40
  center_bias: float = 0.25
  num_train: int = 2000
  num_test: int = 200
  seed: int = 0


def saliency_config(**kwargs) -> SaliencyConfig:
  """A :class:`SaliencyConfig` whose name encodes every setting (its cache directory)."""
  c = SaliencyConfig(name='tmp', **kwargs)
  name = (
    f's{c.image_size}_o{c.max_objects}_f{c.num_fixations}_c{c.center_bias:g}_'
    f'n{c.num_train}_t{c.num_test}_seed{c.seed}'
  )
  return dataclasses.replace(c, name=name)


class SyntheticSaliency(GeneratedOffline, tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Images with a few salient objects, their known fixation density and sampled fixations.

  ``density`` is stored as a uint8 PNG scaled to a maximum of 255 (as the MIT
  benchmark stores its fixation maps); ``fixations`` is the binary map of sampled fixations.
  """

  name = 'synthetic_saliency'
  # Not in a tfds package: no checksums file to find (tfds would search with importlib_resources).
  code_path = None
  VERSION = tfds.core.Version('1.0.0')

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    return tfds.core.DatasetInfo(
      builder=self,
      description=self.__doc__,
      features=tfds.features.FeaturesDict(
        {
          'image': tfds.features.Image(shape=(s, s, 3), encoding_format='png'),
          'density': tfds.features.Image(shape=(s, s, 1), encoding_format='png'),
          'fixations': tfds.features.Image(shape=(s, s, 1), encoding_format='png'),
        }
      ),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    c = self.builder_config
    return {
      'train': self._generate_examples('train', c.num_train),
      'test': self._generate_examples('test', c.num_test),
    }

  def _generate_examples(self, split, count):
    c = self.builder_config
    for index in range(count):
      rng = synthetic.example_rng(c.seed, split, index)
      image, density, fixations = synthetic.saliency_example(
        rng,
        image_size=c.image_size,
        max_objects=c.max_objects,
        num_fixations=c.num_fixations,
        center_bias=c.center_bias,
      )
      density8 = np.round(255.0 * density / density.max()).astype(np.uint8)
      yield (
        index,
        {
          'image': encode_png(image),
          'density': encode_png(density8),
          'fixations': encode_png(fixations),
        },
      )
