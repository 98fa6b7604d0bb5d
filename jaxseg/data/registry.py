"""The dataset registry: every dataset a config can name, what it knows about itself, its builder.

Each dataset is a :class:`DatasetSpec` in :data:`DATASETS`: its task, its builder, its decoder
(tfds record -> sample), its class names and palette, and its own options
(:mod:`jaxseg.data.options` holds the options every dataset shares and their checks;
:mod:`jaxseg.data.preparation` builds a dataset once). :class:`DatasetInfo` is what the training
engine learns about a dataset before reading it. ``describe(name)`` prints a dataset's options.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from jaxseg.data import options as data_options
from jaxseg.viz import palettes

__all__ = [
  'DATASETS',
  'DatasetInfo',
  'DatasetSpec',
  'describe',
  'get_builder',
  'get_spec',
  'list_datasets',
  'register_dataset',
  'resolve_options',
]


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
  """What the training engine needs to know about a dataset before reading it.

  Attributes:
    task: ``'classification'``, ``'segmentation'`` or ``'saliency'``.
    num_classes: classes of ``label``/``mask`` (0 for saliency).
    ignore_label: the mask value never scored (255), or None.
    image_shape: ``(H, W, 3)`` of training batches' images.
    splits: split name -> number of examples.
    eval_image_shape: ``(H, W, 3)`` of evaluation batches' images.
    map_shape: ``(h, w)`` of saliency maps, else None.
    train_split, eval_split: the split names selected by the options.
    class_names: one name per class (``num_classes`` of them; ``()`` for saliency). Datasets
      without published names use ``class_<k>``.
    palette: the colour map of the dataset's masks, ``'voc'`` or ``'cityscapes'``
      (:func:`jaxseg.viz.get_palette`); None for datasets without masks.
    normalization: the input normalisation the pipeline applies
      (:func:`jaxseg.data.transforms.normalize`; :func:`~jaxseg.data.transforms.denormalize`
      inverts it for display).
  """

  task: str
  num_classes: int
  ignore_label: int | None
  image_shape: tuple[int, int, int]
  splits: dict[str, int]
  eval_image_shape: tuple[int, int, int] | None = None
  map_shape: tuple[int, int] | None = None
  train_split: str = 'train'
  eval_split: str = 'test'
  class_names: tuple[str, ...] = ()
  palette: str | None = None
  normalization: str = 'none'


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """One registry entry.

  Attributes:
    name: the registry name.
    task: ``'classification'`` | ``'segmentation'`` | ``'saliency'``.
    doc: one paragraph: what the dataset is and how to prepare it.
    make_builder: ``(options, data_dir) -> tfds.core.DatasetBuilder``.
    num_classes: ``options -> int``.
    decode: ``(record, options) -> sample``, a picklable module-level function turning one
      decoded tfds record into a :mod:`jaxseg.data.transforms` sample (uint8 image, int32 mask,
      float32 density, uint8 fixations).
    options: dataset options ``name -> (default, description)`` (beyond common and task ones).
    defaults: overrides of common/task defaults for this dataset.
    ignore_label: mask ignore value (segmentation only).
    derive: ``options -> options`` filling defaults that depend on other options (a synthetic
      dataset's crop and map sizes default to its generated size), or None.
    fingerprint: ``options -> str`` naming the content the builder reads (a folder dataset's
      listing), so that a prepared builder is reused only while its files are unchanged; None.
    class_names: ``options -> tuple of names``, or None (``class_<k>``).
    palette: ``'voc'`` or ``'cityscapes'`` for datasets with masks, a function ``options ->
      palette`` (a folder dataset's own colours), else None.
  """

  name: str
  task: str
  doc: str
  make_builder: Callable[[dict, str], Any]
  num_classes: Callable[[dict], int]
  decode: Callable[[Mapping[str, Any], dict], dict]
  options: dict[str, tuple[Any, str]] = dataclasses.field(default_factory=dict)
  defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
  ignore_label: int | None = None
  derive: Callable[[dict], dict] | None = None
  fingerprint: Callable[[dict], str] | None = None
  class_names: Callable[[dict], tuple[str, ...]] | None = None
  palette: str | Callable[[dict], Any] | None = None

  def palette_of(self, options: dict) -> Any:
    """The palette under ``options``: the spec's name, or what its function returns."""
    return self.palette(options) if callable(self.palette) else self.palette

  def names(self, options: dict) -> tuple[str, ...]:
    """The class names under ``options``: the spec's, else ``class_0 .. class_<K-1>``."""
    if self.class_names is not None:
      return tuple(self.class_names(options))
    return tuple(f'class_{k}' for k in range(int(self.num_classes(options))))

  def all_options(self) -> dict[str, tuple[Any, str]]:
    """Every option this dataset accepts with its default and description."""
    merged = dict(data_options.COMMON_OPTIONS)
    merged['train_split'] = ('train', 'split trained on')
    merged['eval_split'] = ('test', 'split evaluated on')
    merged.update(data_options.TASK_OPTIONS[self.task])
    merged.update(self.options)
    for key, value in self.defaults.items():
      merged[key] = (value, merged[key][1])
    return merged


# ---------------------------------------------------------------------------------------------
# Decoders: tfds record -> sample. Module-level so grain can pickle them into worker processes.


def _decode_classification(record, options):
  del options
  return {'image': _rgb(record['image']), 'label': np.int32(record['label'])}


def _decode_segmentation(record, options):
  del options
  return {'image': _rgb(record['image']), 'mask': _single(record['mask']).astype(np.int32)}


def _decode_saliency(record, options):
  del options
  return {
    'image': _rgb(record['image']),
    # Step 2 of the density's scales (docs/saliency.md, "The density's scales").
    'density': _single(record['density']).astype(np.float32) / 255.0,
    'fixations': (_single(record['fixations']) > 0).astype(np.uint8),
  }


def _decode_stimulus(record, options):
  del options
  image = _rgb(record['image'])
  return {
    'image': image,
    'density': np.zeros(image.shape[:2], np.float32),
    'fixations': np.zeros(image.shape[:2], np.uint8),
  }


def _decode_pet(record, options):
  # Trimap: 1 pet, 2 background, 3 border ("not classified").
  trimap = _single(record['segmentation_mask']).astype(np.int32)
  if options['pet_mask'] == 'trimap':
    mask = trimap - 1  # 0 pet, 1 background, 2 border
  else:
    mask = np.where(trimap == 1, 1, np.where(trimap == 2, 0, 255)).astype(np.int32)
  return {'image': _rgb(record['image']), 'mask': mask}


# Cityscapes labelIds (0..33, -1 license plate) -> the 19 train ids, others ignored (255); from
# cityscapesScripts/helpers/labels.py.
_CITYSCAPES_TRAIN_IDS = {
  7: 0,
  8: 1,
  11: 2,
  12: 3,
  13: 4,
  17: 5,
  19: 6,
  20: 7,
  21: 8,
  22: 9,
  23: 10,
  24: 11,
  25: 12,
  26: 13,
  27: 14,
  28: 15,
  31: 16,
  32: 17,
  33: 18,
}
CITYSCAPES_LUT = np.full(256, 255, np.int32)
for _label_id, _train_id in _CITYSCAPES_TRAIN_IDS.items():
  CITYSCAPES_LUT[_label_id] = _train_id


def _decode_cityscapes(record, options):
  del options
  return {
    'image': _rgb(record['image_left']),
    'mask': CITYSCAPES_LUT[_single(record['segmentation_label'])],
  }


def _decode_scene_parse150(record, options):
  del options
  # ADE20K SceneParsing: 0 = "other" (not scored), 1..150 the classes -> 0..149, 0 -> 255.
  annotation = _single(record['annotation']).astype(np.int32)
  return {
    'image': _rgb(record['image']),
    'mask': np.where(annotation == 0, 255, annotation - 1).astype(np.int32),
  }


def _rgb(image) -> np.ndarray:
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.shape[-1] == 1:
    image = np.repeat(image, 3, -1)
  return np.ascontiguousarray(image[..., :3], np.uint8)


def _single(image) -> np.ndarray:
  image = np.asarray(image)
  return image[..., 0] if image.ndim == 3 else image


# ---------------------------------------------------------------------------------------------
# Builders. Imports are local so that importing the registry stays cheap.


def _digits_builder(options, data_dir):
  from jaxseg.data.builders import classification  # pylint: disable=g-import-not-at-top

  config = classification.digits_config(
    image_size=options['digits_size'], num_test=options['num_test'], seed=options['split_seed']
  )
  return classification.Digits(data_dir=data_dir, config=config, file_format='array_record')


def _tfds_classification(name):
  def make(options, data_dir):
    del options
    from jaxseg.data.builders import classification  # pylint: disable=g-import-not-at-top

    return classification.tfds_classification_builder(name)(
      data_dir=data_dir, file_format='array_record'
    )

  return make


def _pet_builder(options, data_dir):
  del options
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.tf_free_oxford_iiit_pet()(data_dir=data_dir, file_format='array_record')


def _cityscapes_builder(options, data_dir):
  del options
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.tf_free_cityscapes()(
    data_dir=data_dir, config='semantic_segmentation', file_format='array_record'
  )


def _ade20k_builder(options, data_dir):
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.Ade20k(
    data_dir=data_dir,
    file_format='array_record',
    skip_corrupt=options['skip_corrupt'],
    allow_download=options['download'],
  )


def _shapes_builder(options, data_dir):
  from jaxseg.data.builders import synthetic  # pylint: disable=g-import-not-at-top

  config = synthetic.shapes_config(
    image_size=options['synthetic_size'],
    num_shape_classes=options['num_shape_classes'],
    max_shapes=options['max_shapes'],
    num_train=options['num_train'],
    num_test=options['num_test'],
    seed=options['synthetic_seed'],
  )
  return synthetic.ShapesSegmentation(data_dir=data_dir, config=config, file_format='array_record')


def _synthetic_saliency_builder(options, data_dir):
  from jaxseg.data.builders import synthetic  # pylint: disable=g-import-not-at-top

  config = synthetic.saliency_config(
    image_size=options['synthetic_size'],
    max_objects=options['max_objects'],
    num_fixations=options['num_fixations'],
    center_bias=options['center_bias'],
    num_train=options['num_train'],
    num_test=options['num_test'],
    seed=options['synthetic_seed'],
  )
  return synthetic.SyntheticSaliency(data_dir=data_dir, config=config, file_format='array_record')


def _folder_classes(options) -> tuple[tuple[str, ...], tuple | None]:
  """``image_folder``'s class names and colours: the options', else ``<masks_dir>/classes.json``."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  names, palette = tuple(options['class_names']), tuple(options['palette']) or None
  classes_json = os.path.join(options['masks_dir'], 'classes.json')
  if (not names or palette is None) and options['masks_dir'] and os.path.isfile(classes_json):
    json_names, json_palette = folder.load_classes_json(classes_json)
    names = names or json_names
    palette = palette if palette is not None else json_palette
  if not names:
    raise ValueError(
      "image_folder needs its classes: set data.class_names (e.g. ('background', 'cell')) or "
      f'put a classes.json in data.masks_dir {options["masks_dir"]!r} '
      '({"classes": [{"name": "background", "color": [0, 0, 0]}, ...]}).'
    )
  if palette is not None and len(palette) != len(names):
    raise ValueError(
      f'data.palette has {len(palette)} colours for {len(names)} classes '
      f'{names}; give one (r, g, b) per class.'
    )
  return names, palette


def _check_folder_options(options) -> None:
  for key in ('images_dir', 'masks_dir'):
    if not options[key]:
      raise ValueError(f'image_folder needs data.{key} (a folder path), got {options[key]!r}.')
    if not os.path.isdir(options[key]):
      raise ValueError(f'data.{key} {options[key]!r} is not a folder.')
  names, _ = _folder_classes(options)
  ignore = options['ignore_label']
  if not isinstance(ignore, int) or isinstance(ignore, bool) or not len(names) <= ignore <= 255:
    raise ValueError(
      f'data.ignore_label must be an int in [{len(names)}, 255] (not one of the '
      f'{len(names)} classes), got {ignore!r}.'
    )


def _image_folder_builder(options, data_dir):
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  _check_folder_options(options)
  names, palette = _folder_classes(options)
  split = folder.FolderSplit(
    train_list=options['train_list'],
    eval_list=options['eval_list'],
    eval_fraction=options['eval_fraction'],
    seed=options['split_seed'],
  )
  images_dir, masks_dir = (
    os.path.abspath(os.path.expanduser(options[k])) for k in ('images_dir', 'masks_dir')
  )
  digest = folder.folder_digest(
    [images_dir, masks_dir, split.train_list, split.eval_list],
    [names, palette, options['ignore_label'], split.eval_fraction, split.seed],
  )
  return folder.ImageFolderSegmentation(
    images_dir=images_dir,
    masks_dir=masks_dir,
    split=split,
    config_name=f'f{digest}',
    num_classes=len(names),
    ignore_label=options['ignore_label'],
    palette=palette,
    skip_corrupt=options['skip_corrupt'],
    data_dir=data_dir,
    file_format='array_record',
  )


def _image_folder_fingerprint(options) -> str:
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.folder_digest(
    [options[k] for k in ('images_dir', 'masks_dir', 'train_list', 'eval_list')], []
  )


def _camvid_builder(options, data_dir):
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CamVid(
    skip_corrupt=options['skip_corrupt'], data_dir=data_dir, file_format='array_record'
  )


def _voc_builder(kind):
  def make(options, data_dir):
    from jaxseg.data.builders import voc  # pylint: disable=g-import-not-at-top

    cls = voc.Voc2012Segmentation if kind == 'voc' else voc.Voc2012Sbd
    return cls(
      data_dir=data_dir,
      file_format='array_record',
      skip_corrupt=options['skip_corrupt'],
      allow_download=options['download'],
    )

  return make


def _salicon_builder(options, data_dir):
  from jaxseg.data.builders import saliency  # pylint: disable=g-import-not-at-top

  config = saliency.salicon_config(sigma=options['blur_sigma'])
  return saliency.Salicon(
    data_dir=data_dir,
    config=config,
    file_format='array_record',
    skip_corrupt=options['skip_corrupt'],
  )


def _mit_builder(kind):
  def make(options, data_dir):
    from jaxseg.data.builders import saliency  # pylint: disable=g-import-not-at-top

    if kind == 'mit1003':
      config = saliency.mit1003_config(
        num_validation=options['num_validation'], seed=options['split_seed']
      )
      return saliency.Mit1003(
        data_dir=data_dir,
        config=config,
        file_format='array_record',
        skip_corrupt=options['skip_corrupt'],
      )
    return saliency.Mit300(
      data_dir=data_dir, file_format='array_record', skip_corrupt=options['skip_corrupt']
    )

  return make


def _default_to_generated_size(*keys):
  def derive(options):
    size = options['synthetic_size']
    return {
      key: (size, size) if key in ('image_size', 'map_size') else size
      for key in keys
      if options[key] is None
    }

  return derive


def _const(n):
  return lambda options: n


# The viz layer holds the palettes' class names (one copy for data, tasks and overlays).
_VOC_CLASSES = palettes.VOC_CLASSES
_CITYSCAPES_CLASSES = palettes.CITYSCAPES_CLASSES
_CIFAR10_CLASSES = (
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
)
_DIGIT_CLASSES = tuple(str(k) for k in range(10))


def _shape_class_names(options):
  from jaxseg.data import synthetic  # pylint: disable=g-import-not-at-top

  kinds = synthetic.SHAPE_KINDS
  return ('background',) + tuple(
    f'{kinds[(k - 1) % len(kinds)]}_{k}' for k in range(1, options['num_shape_classes'] + 1)
  )


def _pet_class_names(options):
  return (
    ('pet', 'background', 'border') if options['pet_mask'] == 'trimap' else ('background', 'pet')
  )


_SYNTHETIC_COMMON = {
  'synthetic_size': (64, 'side of the generated images'),
  'num_train': (2000, 'training examples generated'),
  'num_test': (200, 'held-out examples generated'),
  'synthetic_seed': (0, 'seed of the generator (each example is seeded by seed, split, index)'),
}

DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(spec: DatasetSpec) -> None:
  """Registers ``spec`` under its name (raises ValueError for a name already taken)."""
  if spec.name in DATASETS:
    raise ValueError(f'register_dataset: a dataset named {spec.name!r} is already registered.')
  DATASETS[spec.name] = spec


register_dataset(
  DatasetSpec(
    name='digits',
    task='classification',
    doc="scikit-learn's 8x8 UCI handwritten digits (1797), upsampled; offline.",
    make_builder=_digits_builder,
    num_classes=_const(10),
    decode=_decode_classification,
    class_names=_const(_DIGIT_CLASSES),
    options={
      'digits_size': (32, 'side the 8x8 digits are upsampled to when building'),
      'num_test': (297, 'test examples (stratified split)'),
      'split_seed': (0, 'seed of the stratified train/test split'),
    },
  )
)
for _name, _n, _size, _eval in (
  ('mnist', 10, 28, 'test'),
  ('cifar10', 10, 32, 'test'),
  ('cifar100', 100, 32, 'test'),
  ('imagenet2012', 1000, 224, 'validation'),
):
  register_dataset(
    DatasetSpec(
      name=_name,
      task='classification',
      doc=f"tfds's {_name} builder, built as ArrayRecord without TensorFlow.",
      make_builder=_tfds_classification(_name),
      num_classes=_const(_n),
      decode=_decode_classification,
      class_names={'mnist': _const(_DIGIT_CLASSES), 'cifar10': _const(_CIFAR10_CLASSES)}.get(_name),
      defaults={
        'image_size': _size,
        'eval_split': _eval,
        **({'crop_padding': 4, 'flip': True} if _name.startswith('cifar') else {}),
        **({'flip': True, 'normalization': 'imagenet'} if _name == 'imagenet2012' else {}),
      },
    )
  )
register_dataset(
  DatasetSpec(
    name='shapes_segmentation',
    task='segmentation',
    doc='Synthetic circles, rectangles and triangles with masks; deterministic from a seed.',
    make_builder=_shapes_builder,
    num_classes=lambda o: o['num_shape_classes'] + 1,
    decode=_decode_segmentation,
    ignore_label=255,
    class_names=_shape_class_names,
    palette='voc',
    options={
      **_SYNTHETIC_COMMON,
      'num_shape_classes': (3, 'foreground classes K (the dataset has K + 1)'),
      'max_shapes': (3, 'most shapes per image'),
    },
    defaults={
      'crop_size': None,
      'eval_size': None,
      'scale_range': (1.0, 1.0),
      'normalization': 'none',
    },
    derive=_default_to_generated_size('crop_size', 'eval_size'),
  )
)
register_dataset(
  DatasetSpec(
    name='synthetic_saliency',
    task='saliency',
    doc='Synthetic salient objects with a known fixation density and sampled fixations.',
    make_builder=_synthetic_saliency_builder,
    num_classes=_const(0),
    decode=_decode_saliency,
    options={
      **_SYNTHETIC_COMMON,
      'max_objects': (3, 'most salient objects per image'),
      'num_fixations': (40, 'fixations sampled per image'),
      'center_bias': (0.25, 'weight of the centre Gaussian in the density'),
    },
    defaults={'image_size': None, 'map_size': None, 'normalization': 'none'},
    derive=_default_to_generated_size('image_size', 'map_size'),
  )
)
register_dataset(
  DatasetSpec(
    name='voc2012_segmentation',
    task='segmentation',
    doc='PASCAL VOC 2012 segmentation (1464 train, 1449 val) from VOCtrainval_11-May-2012.',
    make_builder=_voc_builder('voc'),
    num_classes=_const(21),
    decode=_decode_segmentation,
    ignore_label=255,
    class_names=_const(_VOC_CLASSES),
    palette='voc',
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='voc2012_sbd',
    task='segmentation',
    doc='VOC 2012 train merged with SBD (train_aug, 10582), VOC 2012 val held out (1449).',
    make_builder=_voc_builder('sbd'),
    num_classes=_const(21),
    decode=_decode_segmentation,
    ignore_label=255,
    class_names=_const(_VOC_CLASSES),
    palette='voc',
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='oxford_iiit_pet',
    task='segmentation',
    doc="tfds's Oxford-IIIT Pet with its trimaps.",
    make_builder=_pet_builder,
    num_classes=lambda o: 3 if o['pet_mask'] == 'trimap' else 2,
    decode=_decode_pet,
    ignore_label=255,
    class_names=_pet_class_names,
    palette='voc',
    options={
      'pet_mask': (
        'binary',
        "'binary': pet 1, background 0, border 255 (ignored); "
        "'trimap': pet 0, background 1, border 2",
      )
    },
    defaults={'crop_size': 256, 'eval_size': 512},
  )
)
register_dataset(
  DatasetSpec(
    name='cityscapes',
    task='segmentation',
    doc="tfds's Cityscapes (manual download), labelIds mapped to the 19 train ids.",
    make_builder=_cityscapes_builder,
    num_classes=_const(19),
    decode=_decode_cityscapes,
    ignore_label=255,
    class_names=_const(_CITYSCAPES_CLASSES),
    palette='cityscapes',
    defaults={'crop_size': 769, 'eval_size': 1024, 'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='scene_parse150',
    task='segmentation',
    doc="ADE20K SceneParsing (150 classes, 'other' ignored) from ADEChallengeData2016.zip.",
    make_builder=_ade20k_builder,
    num_classes=_const(150),
    decode=_decode_scene_parse150,
    ignore_label=255,
    palette='voc',
    defaults={'crop_size': 512, 'eval_size': 512, 'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='salicon',
    task='saliency',
    doc='SALICON (10000 train, 5000 val) from the official images and fixation JSON.',
    make_builder=_salicon_builder,
    num_classes=_const(0),
    decode=_decode_saliency,
    options={'blur_sigma': (19.0, 'Gaussian sigma in pixels of the density built from fixations')},
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='mit1003',
    task='saliency',
    doc='MIT1003 stimuli, fixation maps and fixation points; a seeded validation hold-out.',
    make_builder=_mit_builder('mit1003'),
    num_classes=_const(0),
    decode=_decode_saliency,
    options={
      'num_validation': (100, 'images held out for validation'),
      'split_seed': (0, 'seed of the validation hold-out'),
    },
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='mit300',
    task='saliency',
    doc='MIT300 benchmark stimuli only (no public maps): for producing maps to submit.',
    make_builder=_mit_builder('mit300'),
    num_classes=_const(0),
    decode=_decode_stimulus,
    defaults={'train_split': 'test'},
  )
)


register_dataset(
  DatasetSpec(
    name='image_folder',
    task='segmentation',
    doc='Your own images and masks: data.images_dir and data.masks_dir matched by file stem; '
    'index PNGs, or colour PNGs with data.palette / classes.json; list-file or seeded splits.',
    make_builder=_image_folder_builder,
    num_classes=lambda o: len(_folder_classes(o)[0]),
    class_names=lambda o: _folder_classes(o)[0],
    palette=lambda o: _folder_classes(o)[1] or 'voc',
    decode=_decode_segmentation,
    ignore_label=255,
    fingerprint=_image_folder_fingerprint,
    options={
      'images_dir': ('', 'folder of images (any format Pillow reads)'),
      'masks_dir': ('', 'folder of mask PNGs named like the images (a.jpg <-> a.png)'),
      'class_names': ((), 'class names in index order; () -> classes.json in masks_dir'),
      'palette': (
        (),
        '(r, g, b) per class for colour masks (and the overlays); () -> '
        "classes.json's colours, else index masks and the VOC colours",
      ),
      'ignore_label': (255, 'mask value never scored (stored as 255)'),
      'train_list': ('', "file of training image stems, one per line ('' -> seeded split)"),
      'eval_list': ('', "file of validation image stems ('' -> seeded split)"),
      'eval_fraction': (0.1, 'share held out for validation when there are no list files'),
      'split_seed': (0, 'seed of that hold-out'),
    },
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='camvid',
    task='segmentation',
    doc='CamVid as SegNet prepared it (367 train, 101 val, 233 test; 360x480; 11 classes, void '
    'ignored) in the images_prepped_<split>/annotations_prepped_<split> layout.',
    make_builder=_camvid_builder,
    num_classes=_const(11),
    class_names=lambda o: _camvid_classes(),
    palette=lambda o: _camvid_palette(),
    decode=_decode_segmentation,
    ignore_label=255,
    defaults={'crop_size': 352, 'eval_size': 480, 'eval_split': 'test'},
  )
)


def _camvid_classes() -> tuple[str, ...]:
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CAMVID_CLASSES


def _camvid_palette() -> tuple[tuple[int, int, int], ...]:
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CAMVID_PALETTE


def list_datasets() -> list[str]:
  """Names of every registered dataset, sorted."""
  return sorted(DATASETS)


def get_spec(name: str) -> DatasetSpec:
  """The :class:`DatasetSpec` registered under ``name``; ValueError listing names otherwise."""
  if name not in DATASETS:
    raise ValueError(f'data.name must be one of {list_datasets()}, got {name!r}.')
  return DATASETS[name]


def describe(name: str) -> str:
  """A table of the options of dataset ``name`` with defaults and descriptions."""
  spec = get_spec(name)
  lines = [f'{name} ({spec.task}): {spec.doc}']
  for key, (default, doc) in sorted(spec.all_options().items()):
    shown = (
      repr(default)
      if default is not None
      else (
        "None (the augment recipe's default)" if key == 'flip' else 'None (follows synthetic_size)'
      )
    )
    lines.append(f'  {key} = {shown}: {doc}')
  return '\n'.join(lines)


def resolve_options(data_config) -> tuple[DatasetSpec, dict]:
  """The dataset spec and the full options (defaults filled in) of a ``config.data``.

  Raises:
    ValueError: for an unknown dataset name, or options the dataset does not define (named).
  """
  given = data_options.as_dict(data_config)
  spec = get_spec(given.get('name', ''))
  return spec, data_options.resolve(spec, given)


def get_builder(data_config):
  """The tfds builder of ``config.data`` (not yet prepared)."""
  from jaxseg.data import preparation  # pylint: disable=g-import-not-at-top

  spec, options = resolve_options(data_config)
  return spec.make_builder(options, preparation.resolve_data_dir(options))
