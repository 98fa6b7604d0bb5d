"""The dataset registry: every dataset a config can name, what it knows about itself, its builder.

Each dataset is a :class:`DatasetSpec` in :data:`DATASETS`: its task, its builder, its decoder
(tfds record -> sample), its class names and palette, and its own options. The pieces a spec
names live in modules of their own: :mod:`jaxseg.data.builder_factories` (options -> tfds
builder), :mod:`jaxseg.data.decoders` (record -> sample), :mod:`jaxseg.data.class_names`;
:mod:`jaxseg.data.options` holds the options every dataset shares and their checks, and
:mod:`jaxseg.data.preparation` builds a dataset once. :class:`DatasetInfo` is what the training
engine learns about a dataset before reading it. ``describe(name)`` prints a dataset's options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from jaxseg.data import builder_factories as factories
from jaxseg.data import class_names, decoders
from jaxseg.data import options as data_options

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
    make_builder=factories.digits,
    num_classes=_const(10),
    decode=decoders.classification,
    class_names=_const(class_names.DIGITS),
    options={
      'digits_size': (32, 'side the 8x8 digits are upsampled to when building'),
      'num_test': (297, 'test examples (stratified split)'),
      'split_seed': (0, 'seed of the stratified train/test split'),
    },
    # One reading thread: a 32x32 digit's decode and crop are ~0.1 ms of Python holding the
    # GIL, which more threads only contend for (measured on 2 cores, batches of 64: 14.6 ms wall
    # and 19.7 ms CPU a batch with 4 threads, 8.9 and 8.9 ms with 1; the lenet5_digits run
    # 57-65 -> 92-99 steps/s, 10.7-13.5 -> 8.9-9.6 s in all). Larger images (the 64x64 shapes:
    # 24-25 steps/s either way) keep the common default. The decoded split (4.6 MB) is kept in
    # memory: a batch 8.4 -> 3.7 ms (pipeline._in_memory).
    defaults={'read_threads': 1, 'cache_in_memory': True},
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
      make_builder=factories.tfds_classification(_name),
      num_classes=_const(_n),
      decode=decoders.classification,
      class_names={
        'mnist': _const(class_names.DIGITS),
        'cifar10': _const(class_names.CIFAR10),
        'cifar100': _const(class_names.CIFAR100),
        'imagenet2012': lambda o: class_names.imagenet2012(),
      }[_name],
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
    make_builder=factories.shapes,
    num_classes=lambda o: o['num_shape_classes'] + 1,
    decode=decoders.segmentation,
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
    make_builder=factories.synthetic_saliency,
    num_classes=_const(0),
    decode=decoders.saliency,
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
    make_builder=factories.voc('voc'),
    num_classes=_const(21),
    decode=decoders.segmentation,
    ignore_label=255,
    class_names=_const(class_names.VOC),
    palette='voc',
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='voc2012_sbd',
    task='segmentation',
    doc='VOC 2012 train merged with SBD (train_aug, 10582), VOC 2012 val held out (1449).',
    make_builder=factories.voc('sbd'),
    num_classes=_const(21),
    decode=decoders.segmentation,
    ignore_label=255,
    class_names=_const(class_names.VOC),
    palette='voc',
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='oxford_iiit_pet',
    task='segmentation',
    doc="tfds's Oxford-IIIT Pet with its trimaps.",
    make_builder=factories.pet,
    num_classes=lambda o: 3 if o['pet_mask'] == 'trimap' else 2,
    decode=decoders.pet,
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
    make_builder=factories.cityscapes,
    num_classes=_const(19),
    decode=decoders.cityscapes,
    ignore_label=255,
    class_names=_const(class_names.CITYSCAPES),
    palette='cityscapes',
    defaults={'crop_size': 769, 'eval_size': 1024, 'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='scene_parse150',
    task='segmentation',
    doc="ADE20K SceneParsing (150 classes, 'other' ignored) from ADEChallengeData2016.zip.",
    make_builder=factories.ade20k,
    num_classes=_const(150),
    decode=decoders.scene_parse150,
    ignore_label=255,
    class_names=_const(class_names.ADE20K),
    palette='voc',
    defaults={'crop_size': 512, 'eval_size': 512, 'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='salicon',
    task='saliency',
    doc='SALICON (10000 train, 5000 val) from the official images and fixation JSON.',
    make_builder=factories.salicon,
    num_classes=_const(0),
    decode=decoders.saliency,
    options={'blur_sigma': (19.0, 'Gaussian sigma in pixels of the density built from fixations')},
    defaults={'eval_split': 'validation'},
  )
)
register_dataset(
  DatasetSpec(
    name='mit1003',
    task='saliency',
    doc='MIT1003 stimuli, fixation maps and fixation points; a seeded validation hold-out.',
    make_builder=factories.mit('mit1003'),
    num_classes=_const(0),
    decode=decoders.saliency,
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
    make_builder=factories.mit('mit300'),
    num_classes=_const(0),
    decode=decoders.stimulus,
    defaults={'train_split': 'test'},
  )
)


register_dataset(
  DatasetSpec(
    name='image_folder',
    task='segmentation',
    doc='Your own images and masks: data.images_dir and data.masks_dir matched by file stem; '
    'index PNGs, or colour PNGs with data.palette / classes.json; list-file or seeded splits.',
    make_builder=factories.image_folder,
    num_classes=lambda o: len(factories.folder_classes(o)[0]),
    class_names=lambda o: factories.folder_classes(o)[0],
    palette=lambda o: factories.folder_classes(o)[1] or 'voc',
    decode=decoders.segmentation,
    ignore_label=255,
    fingerprint=factories.image_folder_fingerprint,
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
    make_builder=factories.camvid,
    num_classes=_const(11),
    class_names=lambda o: factories.camvid_classes(),
    palette=lambda o: factories.camvid_palette(),
    decode=decoders.segmentation,
    ignore_label=255,
    defaults={'crop_size': 352, 'eval_size': 480, 'eval_split': 'test'},
  )
)


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
