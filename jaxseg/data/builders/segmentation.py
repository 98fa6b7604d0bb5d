"""Segmentation builders that come from tfds or from ADE20K's release, without TensorFlow.

* ``oxford_iiit_pet`` and ``cityscapes``: tfds's own builders (name, version, URLs, checksums,
  features, splits), subclassed so that the methods calling TensorFlow (``tf.io.gfile`` listing and
  existence checks, tfds's archive extractor, ``tf.image`` re-encoding of a few broken pet JPEGs)
  use ``os``, ``tarfile``/``zipfile`` and Pillow.
* ``ade20k`` (the registry's ``scene_parse150``): tfds's ``scene_parse150`` reads the 2017
  *instance* annotations (``annotations_instance.tar``: channel R is an instance-track category,
  not the 150-class label), so this builder reads the semantic release
  ``ADEChallengeData2016.zip`` instead: ``annotations/*.png`` hold 0 ("other", not scored) and the
  150 classes as 1..150.
"""

from __future__ import annotations

import functools
import io
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxseg.data.builders._common import (
  CorruptImageError,
  MissingFileError,
  check_list_id,
  check_mask_values,
  encode_png,
  extract_archive,
  intended_manual_dir,
  manual_dir_or_none,
  read_mask_values,
  read_rgb_image,
  require_file,
  tf_free,
)
from jaxseg.data.builders._manual_segmentation import ManualSegmentationBuilder

__all__ = ['Ade20k', 'tf_free_cityscapes', 'tf_free_oxford_iiit_pet']


def _pet_split_generators(self, dl_manager):
  """tfds's Oxford-IIIT Pet splits, the two archives extracted with tarfile."""
  from jaxseg.data.builders.classification import obtain  # pylint: disable=g-import-not-at-top
  from tensorflow_datasets.datasets.oxford_iiit_pet import (  # pylint: disable=g-import-not-at-top
    oxford_iiit_pet_dataset_builder as pet,
  )

  base = pet._BASE_URL  # pylint: disable=protected-access
  images = os.path.join(extract_archive(obtain(dl_manager, base + '/images.tar.gz')), 'images')
  annotations = os.path.join(
    extract_archive(obtain(dl_manager, base + '/annotations.tar.gz')), 'annotations'
  )
  return {
    split: self._generate_examples(images, annotations, os.path.join(annotations, list_name))
    for split, list_name in (('train', 'trainval.txt'), ('test', 'test.txt'))
  }


def _pet_generate_examples(self, images_dir_path, annotations_dir_path, images_list_file):
  """tfds's Oxford-IIIT Pet examples, broken JPEGs re-encoded with Pillow (RGB, no alpha)."""
  from tensorflow_datasets.datasets.oxford_iiit_pet import (  # pylint: disable=g-import-not-at-top
    oxford_iiit_pet_dataset_builder as pet,
  )

  with open(images_list_file) as lines:
    for line in lines:
      if not line.strip():
        continue
      name, label, species, _ = line.split()
      check_list_id(name, list_path=images_list_file)
      with open(os.path.join(images_dir_path, name + '.jpg'), 'rb') as f:
        image = f.read()
      if name in pet._CORRUPT_SAMPLES:  # pylint: disable=protected-access
        with Image.open(io.BytesIO(image)) as decoded:
          buffer = io.BytesIO()
          decoded.convert('RGB').save(buffer, format='JPEG', quality=95)
        image = buffer.getvalue()
      try:
        head_bbox = pet._get_head_bbox(  # pylint: disable=protected-access
          os.path.join(annotations_dir_path, 'xmls', name + '.xml')
        )
      except FileNotFoundError:  # the test images have no head box
        head_bbox = pet._EMPTY_BBOX  # pylint: disable=protected-access
      yield (
        name + '.jpg',
        {
          'image': image,
          'label': int(label) - 1,
          'species': int(species) - 1,
          'file_name': name + '.jpg',
          'segmentation_mask': os.path.join(annotations_dir_path, 'trimaps', name + '.png'),
          'head_bbox': head_bbox,
        },
      )


def _cityscapes_split_generators(self, dl_manager):
  """tfds's Cityscapes splits with the archives checked by os.path, naming each missing one."""
  manual_dir = manual_dir_or_none(dl_manager) or intended_manual_dir(dl_manager)
  archives = {
    feature: os.path.join(manual_dir, archive)
    for feature, (archive, _) in self.builder_config.zip_root.items()
  }
  missing = [path for path in archives.values() if not os.path.exists(path)]
  if missing:
    raise MissingFileError(
      f'Missing {", ".join(missing)}.\nExpected layout:\n  <manual_dir>/'
      'leftImg8bit_trainvaltest.zip\n  <manual_dir>/gtFine_trainvaltest.zip\n'
      'Get them from: https://www.cityscapes-dataset.com/downloads/ (after registering)'
    )
  roots = {
    feature: os.path.join(extract_archive(archives[feature]), root)
    for feature, (_, root) in self.builder_config.zip_root.items()
  }
  return [
    tfds.core.SplitGenerator(
      name=split,
      gen_kwargs={
        feature: os.path.join(root, folder)
        for feature, root in roots.items()
        if not feature.endswith('/extra')
      },
    )
    for split, folder in (('train', 'train'), ('validation', 'val'), ('test', 'test'))
  ]


def _cityscapes_generate_examples(self, **paths):
  """tfds's Cityscapes examples, with directories listed by os (sorted, so builds are stable)."""
  config = self.builder_config
  left_root = paths['images_left']
  for city in sorted(os.listdir(left_root)):
    for left in sorted(os.listdir(os.path.join(left_root, city))):
      image_id = left.rsplit('_', 1)[0]  # <city>_<seq>_<frame>_leftImg8bit.png
      if image_id in config.ignored_ids:
        continue
      features = {'image_id': image_id, 'image_left': os.path.join(left_root, city, left)}
      if config.right_images:
        features['image_right'] = os.path.join(
          paths['images_right'], city, f'{image_id}_rightImg8bit.png'
        )
      if config.segmentation_labels:
        features['segmentation_label'] = os.path.join(
          paths['segmentation_labels'], city, f'{image_id}_{config.label_suffix}.png'
        )
      if config.disparity_maps:
        features['disparity_map'] = os.path.join(
          paths['disparity_maps'], city, f'{image_id}_disparity.png'
        )
      yield image_id, features


@functools.cache
def tf_free_oxford_iiit_pet() -> type:
  """tfds's ``oxford_iiit_pet`` builder class, building without TensorFlow."""
  from tensorflow_datasets.datasets.oxford_iiit_pet import (  # pylint: disable=g-import-not-at-top
    oxford_iiit_pet_dataset_builder as pet,
  )

  return tf_free(
    pet.Builder,
    'oxford_iiit_pet',
    {'_split_generators': _pet_split_generators, '_generate_examples': _pet_generate_examples},
  )


@functools.cache
def tf_free_cityscapes() -> type:
  """tfds's ``cityscapes`` builder class, building without TensorFlow."""
  from tensorflow_datasets.datasets.cityscapes import (  # pylint: disable=g-import-not-at-top
    cityscapes_dataset_builder as city,
  )

  return tf_free(
    city.Builder,
    'cityscapes',
    {
      '_split_generators': _cityscapes_split_generators,
      '_generate_examples': _cityscapes_generate_examples,
    },
  )


ADE_URL = 'http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip'
ADE_LAYOUT = """\
  <manual_dir>/ADEChallengeData2016/         (extract ADEChallengeData2016.zip in manual_dir)
      images/training/ADE_train_<n>.jpg
      images/validation/ADE_val_<n>.jpg
      annotations/training/ADE_train_<n>.png  (0 = other, 1..150 = classes)
      annotations/validation/ADE_val_<n>.png"""
ADE_SOURCE = f'{ADE_URL} (MIT Scene Parsing Benchmark, 923 MB)'


class Ade20k(ManualSegmentationBuilder, skip_registration=True):
  """ADE20K SceneParsing (20210 training, 2000 validation images, 150 classes + 'other')."""

  name = 'ade20k_scene_parsing'
  MANUAL_DOWNLOAD_INSTRUCTIONS = ADE_LAYOUT
  MASK_KEY = 'annotation'  # tfds's scene_parse150 feature name

  def _split_generators(self, dl_manager):
    manual_dir = manual_dir_or_none(dl_manager)
    root = os.path.join(manual_dir or intended_manual_dir(dl_manager), 'ADEChallengeData2016')
    archive = os.path.join(os.path.dirname(root), os.path.basename(ADE_URL))
    if not os.path.isdir(root) and os.path.isfile(archive):
      root = os.path.join(extract_archive(archive), 'ADEChallengeData2016')
    elif not os.path.isdir(root) and self._allow_download:
      root = os.path.join(
        extract_archive(os.fspath(dl_manager.download(ADE_URL))), 'ADEChallengeData2016'
      )
    require_file(os.path.join(root, 'images', 'training'), layout=ADE_LAYOUT, source=ADE_SOURCE)
    return {
      'train': self._generate_examples(root, 'training'),
      'validation': self._generate_examples(root, 'validation'),
    }

  def _generate_examples(self, root, folder):
    images = os.path.join(root, 'images', folder)
    require_file(images, layout=ADE_LAYOUT, source=ADE_SOURCE)
    for file_name in sorted(os.listdir(images)):
      stem = os.path.splitext(file_name)[0]
      annotation_path = require_file(
        os.path.join(root, 'annotations', folder, stem + '.png'),
        layout=ADE_LAYOUT,
        source=ADE_SOURCE,
      )
      try:
        image, size = read_rgb_image(os.path.join(images, file_name))
        annotation = read_mask_values(annotation_path)  # 16-bit values stay values
      except CorruptImageError as e:
        self._skip.handle(e)
        continue
      if annotation.ndim != 2:
        raise ValueError(
          f'{annotation_path} has shape {annotation.shape}; expected (H, W) class indices.'
        )
      if annotation.shape != size:
        raise ValueError(f'{annotation_path} has shape {annotation.shape}, its image {size}.')
      check_mask_values(annotation, num_classes=151, ignore_label=151, where=annotation_path)
      annotation = annotation.astype(np.uint8)
      yield stem, {'image': image, 'annotation': encode_png(annotation), 'image_id': stem}
    self._skip.log_summary(self.name)
