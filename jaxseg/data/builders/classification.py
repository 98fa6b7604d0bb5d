"""Classification builders: ``digits`` (offline) and TensorFlow-free versions of tfds's own.

* :class:`Digits`: scikit-learn's copy of the UCI optical handwritten digits (1797 images of 8x8
  pixels, 16 gray levels), upsampled bilinearly to ``image_size`` and split by a seeded stratified
  split into ``train`` and ``test``. It ships with scikit-learn, so it works offline.
* :func:`tfds_classification_builder`: tfds's ``mnist``, ``cifar10``, ``cifar100`` and
  ``imagenet2012`` builders, subclassed so that reading the raw files and encoding images need no
  TensorFlow (tfds's generators read with ``tf.io.gfile`` and encode NumPy images with
  ``tf.image``). Download URLs, checksums, splits and the on-disk name are tfds's own, so a
  dataset prepared by tfds as ArrayRecord is reused.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg.data.builders._common import GeneratedOffline, encode_png, tf_free

__all__ = ['Digits', 'DigitsConfig', 'digits_config', 'tfds_classification_builder']


@dataclasses.dataclass(eq=False)
class DigitsConfig(tfds.core.BuilderConfig):
  """Settings of ``digits``: output side, test-set size and split seed."""

  image_size: int = 32
  num_test: int = 297
  seed: int = 0


def digits_config(**kwargs) -> DigitsConfig:
  """A :class:`DigitsConfig` whose name encodes every setting (its cache directory)."""
  c = DigitsConfig(name='tmp', **kwargs)
  return dataclasses.replace(c, name=f's{c.image_size}_t{c.num_test}_seed{c.seed}')


def digits_split(num_test: int, seed: int) -> dict[str, np.ndarray]:
  """Indices into ``sklearn.datasets.load_digits()`` of the stratified train/test split."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top

  target = load_digits().target
  train, test = train_test_split(
    np.arange(len(target)), test_size=num_test, random_state=seed, stratify=target
  )
  return {'train': np.sort(train), 'test': np.sort(test)}


class Digits(GeneratedOffline, tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """The UCI handwritten digits of scikit-learn, upsampled to RGB ``image_size`` squares."""

  name = 'digits'
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
          'label': tfds.features.ClassLabel(num_classes=10),
        }
      ),
      supervised_keys=('image', 'label'),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Ships with scikit-learn.
    c = self.builder_config
    splits = digits_split(c.num_test, c.seed)
    return {name: self._generate_examples(indices) for name, indices in splits.items()}

  def _generate_examples(self, indices):
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top

    digits = load_digits()
    s = self.builder_config.image_size
    for index in indices:
      # 16 gray levels -> 0..255, then a bilinear upsampling of the float image.
      gray = (digits.images[index] * (255.0 / 16.0)).astype(np.float32)
      big = np.asarray(Image.fromarray(gray).resize((s, s), Image.BILINEAR))
      rgb = np.repeat(np.clip(np.round(big), 0, 255).astype(np.uint8)[..., None], 3, -1)
      yield int(index), {'image': encode_png(rgb), 'label': int(digits.target[index])}


def _read(path) -> bytes:
  path = os.fspath(path)
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'rb') as f:
    return f.read()


def obtain(dl_manager, url: str) -> str:
  """The archive ``url`` names: from the manual directory when a user put it there, else
  downloaded (tfds's HTTP download needs no TensorFlow; its extraction does, so none here)."""
  from jaxseg.data.builders._common import manual_dir_or_none  # pylint: disable=g-import-not-at-top

  manual_dir = manual_dir_or_none(dl_manager)
  name = os.path.basename(url)
  if manual_dir and os.path.exists(os.path.join(manual_dir, name)):
    return os.path.join(manual_dir, name)
  return os.fspath(dl_manager.download(url))


def _mnist_split_generators(self, dl_manager):
  """tfds MNIST's splits from the four gzipped IDX files (read with gzip, not tf.io.gfile)."""
  from tensorflow_datasets.image_classification import mnist  # pylint: disable=g-import-not-at-top

  files = {
    key: obtain(dl_manager, self.URL + name)
    for key, name in (
      ('train_data', mnist._MNIST_TRAIN_DATA_FILENAME),  # pylint: disable=protected-access
      ('train_labels', mnist._MNIST_TRAIN_LABELS_FILENAME),  # pylint: disable=protected-access
      ('test_data', mnist._MNIST_TEST_DATA_FILENAME),  # pylint: disable=protected-access
      ('test_labels', mnist._MNIST_TEST_LABELS_FILENAME),
    )
  }  # pylint: disable=protected-access
  # pylint: disable-next=protected-access
  counts = {'train': mnist._TRAIN_EXAMPLES, 'test': mnist._TEST_EXAMPLES}
  return {
    split: self._generate_examples(counts[split], files[split + '_data'], files[split + '_labels'])
    for split in counts
  }


def _mnist_generate_examples(self, num_examples, data_path, label_path):
  """tfds MNIST's examples: IDX headers of 16 and 8 bytes, then uint8 pixels and labels."""
  del self
  side = 28
  pixels = np.frombuffer(_read(data_path), np.uint8, count=num_examples * side * side, offset=16)
  labels = np.frombuffer(_read(label_path), np.uint8, count=num_examples, offset=8)
  images = pixels.reshape(num_examples, side, side)
  for index in range(num_examples):
    yield index, {'image': encode_png(images[index]), 'label': int(labels[index])}


def _cifar_split_generators(self, dl_manager):
  """tfds CIFAR's splits from the binary release, extracted with tarfile."""
  from jaxseg.data.builders._common import extract_archive  # pylint: disable=g-import-not-at-top

  info = self._cifar_info  # pylint: disable=protected-access
  root = os.path.join(extract_archive(obtain(dl_manager, info.url)), info.prefix)
  for label_key, label_file in zip(info.label_keys, info.label_files):
    names = _read(os.path.join(root, label_file)).decode().split('\n')
    self.info.features[label_key].names = [n for n in names if n]
  return {
    'train': self._generate_examples('train_', [os.path.join(root, f) for f in info.train_files]),
    'test': self._generate_examples('test_', [os.path.join(root, f) for f in info.test_files]),
  }


def _cifar_generate_examples(self, split_prefix, filepaths):
  """tfds CIFAR's examples: records of label bytes then 3x32x32 planes (R, G, B)."""
  label_keys = self._cifar_info.label_keys  # pylint: disable=protected-access
  record_size = len(label_keys) + 3 * 32 * 32
  index = 0
  for path in filepaths:
    content = np.frombuffer(_read(path), np.uint8)
    for record in content[: len(content) // record_size * record_size].reshape(-1, record_size):
      labels = record[: len(label_keys)]
      image = record[len(label_keys) :].reshape(3, 32, 32).transpose(1, 2, 0)
      example = {key: int(label) for key, label in zip(label_keys, labels)}
      example['id'] = f'{split_prefix}{index:05d}'
      example['image'] = encode_png(image)
      yield index, example
      index += 1


def _imagenet_split_generators(self, dl_manager):
  """tfds ImageNet's splits, found with os.path and labelled without TensorFlow."""
  import tarfile  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.datasets.imagenet2012 import (  # pylint: disable=g-import-not-at-top
    imagenet_common,
  )

  manual_dir = os.fspath(dl_manager.manual_dir)
  paths = {
    name: os.path.join(manual_dir, f'ILSVRC2012_img_{name}.tar')
    for name in ('train', 'val', 'test')
  }
  from jaxseg.data.builders._common import iter_tar  # pylint: disable=g-import-not-at-top

  splits = []
  if os.path.exists(paths['train']):
    splits.append(
      tfds.core.SplitGenerator(name='train', gen_kwargs={'archive': iter_tar(paths['train'])})
    )
  if os.path.exists(paths['val']):
    labels_file = imagenet_common._VALIDATION_LABELS_FNAME  # pylint: disable=protected-access
    names_path = tfds.core.tfds_path(labels_file)
    labels = _read(names_path).decode().strip().splitlines()
    with tarfile.open(paths['val'], mode='r:') as tar:
      images = sorted(tar.getnames())
    splits.append(
      tfds.core.SplitGenerator(
        name='validation',
        gen_kwargs={
          'archive': iter_tar(paths['val']),
          'validation_labels': dict(zip(images, labels)),
        },
      )
    )
  if os.path.exists(paths['test']):
    splits.append(
      tfds.core.SplitGenerator(
        name='test', gen_kwargs={'archive': iter_tar(paths['test']), 'labels_exist': False}
      )
    )
  if not splits:
    from jaxseg.data.builders._common import MissingFileError  # pylint: disable=g-import-not-at-top

    raise MissingFileError(
      f'Missing {paths["train"]} (and {paths["val"]}).\nExpected layout:\n'
      '  <manual_dir>/ILSVRC2012_img_train.tar\n  <manual_dir>/ILSVRC2012_img_val.tar\n'
      'Get them from: https://image-net.org/download-images (ILSVRC 2012, after registering)'
    )
  return splits


def _imagenet_fix_image(self, image_fname, image):
  """tfds's CMYK and PNG fixes with Pillow: every stored image is an RGB JPEG."""
  from tensorflow_datasets.datasets.imagenet2012 import (  # pylint: disable=g-import-not-at-top
    imagenet2012_dataset_builder as base,
  )

  if image_fname in base.CMYK_IMAGES or image_fname in base.PNG_IMAGES:
    with Image.open(image) as decoded:
      buffer = io.BytesIO()
      decoded.convert('RGB').save(buffer, format='JPEG', quality=95)
    return io.BytesIO(buffer.getvalue())
  return image


_TFDS_MODULES = {
  'mnist': (
    'tensorflow_datasets.image_classification.mnist',
    'MNIST',
    {'_split_generators': _mnist_split_generators, '_generate_examples': _mnist_generate_examples},
  ),
  'cifar10': (
    'tensorflow_datasets.image_classification.cifar',
    'Cifar10',
    {'_split_generators': _cifar_split_generators, '_generate_examples': _cifar_generate_examples},
  ),
  'cifar100': (
    'tensorflow_datasets.image_classification.cifar',
    'Cifar100',
    {'_split_generators': _cifar_split_generators, '_generate_examples': _cifar_generate_examples},
  ),
  'imagenet2012': (
    'tensorflow_datasets.datasets.imagenet2012.imagenet2012_dataset_builder',
    'Builder',
    {'_split_generators': _imagenet_split_generators, '_fix_image': _imagenet_fix_image},
  ),
}


@functools.cache
def tfds_classification_builder(name: str) -> type:
  """The TensorFlow-free subclass of tfds's builder ``name`` (``mnist``, ``cifar10``, ...).

  tfds's own classes keep their name, version, URLs, checksums, features and splits; the
  methods that would call TensorFlow (``tf.io.gfile`` reads, ``tf.image`` encoding) are replaced
  by plain-Python and Pillow ones.

  Returns:
    A builder class with tfds's ``name`` and ``VERSION``.
  """
  import importlib  # pylint: disable=g-import-not-at-top

  if name not in _TFDS_MODULES:
    raise ValueError(f'name must be one of {sorted(_TFDS_MODULES)}, got {name!r}.')
  module_name, class_name, overrides = _TFDS_MODULES[name]
  base = getattr(importlib.import_module(module_name), class_name)
  return tf_free(base, name, overrides)
