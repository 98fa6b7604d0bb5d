"""Classification builders: ``digits`` (offline) and TensorFlow-free versions of tfds's own.

* :class:`Digits`: scikit-learn's copy of the UCI optical handwritten digits (1797 images of 8x8
  pixels, 16 gray levels), upsampled bilinearly to ``image_size`` and split by a seeded stratified
  split into ``train`` and ``test``. It ships with scikit-learn, so it works offline.
* :func:`tfds_classification_builder`: tfds's ``mnist``, ``cifar10``, ``cifar100`` and
  ``imagenet2012`` builders, subclassed so that images their generators produce as NumPy arrays
  are PNG-encoded with Pillow (tfds would call TensorFlow). Download URLs, checksums, splits and
  the on-disk name are tfds's own, so a dataset prepared by tfds as ArrayRecord is reused.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg.data.builders._common import encode_png

__all__ = ["Digits", "DigitsConfig", "digits_config", "tfds_classification_builder"]


@dataclasses.dataclass(eq=False)
class DigitsConfig(tfds.core.BuilderConfig):
  """Settings of ``digits``: output side, test-set size and split seed."""
  image_size: int = 32
  num_test: int = 297
  seed: int = 0


def digits_config(**kwargs) -> DigitsConfig:
  """A :class:`DigitsConfig` whose name encodes every setting (its cache directory)."""
  c = DigitsConfig(name="tmp", **kwargs)
  return dataclasses.replace(c, name=f"s{c.image_size}_t{c.num_test}_seed{c.seed}")


def digits_split(num_test: int, seed: int) -> dict[str, np.ndarray]:
  """Indices into ``sklearn.datasets.load_digits()`` of the stratified train/test split."""
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  from sklearn.model_selection import train_test_split  # pylint: disable=g-import-not-at-top
  target = load_digits().target
  train, test = train_test_split(np.arange(len(target)), test_size=num_test, random_state=seed,
                                 stratify=target)
  return {"train": np.sort(train), "test": np.sort(test)}


class Digits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """The UCI handwritten digits of scikit-learn, upsampled to RGB ``image_size`` squares."""

  name = "digits"
  # Not in a tfds package: no checksums file to find (tfds would search with importlib_resources).
  code_path = None
  VERSION = tfds.core.Version("1.0.0")

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(s, s, 3), encoding_format="png"),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
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
      yield int(index), {"image": encode_png(rgb), "label": int(digits.target[index])}


def _png_encoding_generator(generate):
  """Wraps a tfds ``_generate_examples`` so NumPy ``image`` arrays become Pillow PNG bytes."""

  @functools.wraps(generate)
  def wrapped(self, *args, **kwargs):
    for key, record in generate(self, *args, **kwargs):
      image = record.get("image")
      if isinstance(image, np.ndarray):
        record = dict(record, image=encode_png(image))
      yield key, record

  return wrapped


_TFDS_MODULES = {
    "mnist": ("tensorflow_datasets.image_classification.mnist", "MNIST"),
    "cifar10": ("tensorflow_datasets.image_classification.cifar", "Cifar10"),
    "cifar100": ("tensorflow_datasets.image_classification.cifar", "Cifar100"),
    "imagenet2012": ("tensorflow_datasets.datasets.imagenet2012.imagenet2012_dataset_builder",
                     "Builder"),
}


@functools.cache
def tfds_classification_builder(name: str) -> type:
  """The TensorFlow-free subclass of tfds's builder ``name`` (``mnist``, ``cifar10``, ...).

  Returns:
    A builder class with tfds's ``name``, ``VERSION``, URLs and features, whose generated NumPy
    images are encoded with Pillow.
  """
  import importlib  # pylint: disable=g-import-not-at-top
  if name not in _TFDS_MODULES:
    raise ValueError(f"name must be one of {sorted(_TFDS_MODULES)}, got {name!r}.")
  module_name, class_name = _TFDS_MODULES[name]
  base = getattr(importlib.import_module(module_name), class_name)
  return type(f"TfFree{base.__name__}", (base,), {
      "name": name,
      "_generate_examples": _png_encoding_generator(base._generate_examples),  # pylint: disable=protected-access
      # tfds finds the URLs' checksums next to the module that defines the builder.
      "__module__": base.__module__,
  }, skip_registration=True)
