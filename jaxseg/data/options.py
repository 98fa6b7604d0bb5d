"""The options of ``config.data``: the schema every dataset shares, per task, and their checks.

A config selects a dataset with ``config.data.name`` and sets its options as other fields of
``config.data``. :func:`resolve` fills a dataset's defaults and checks what was given; the
dataset's own options and defaults come with its :class:`jaxseg.data.registry.DatasetSpec`.
Options every dataset accepts:

* ``data_dir`` (str, ``''``): where prepared datasets are cached; ``''`` means
  ``$JAXSEG_DATA_DIR``, else ``~/jaxseg_data``.
* ``manual_dir`` (str, ``''``): where manually downloaded archives are extracted; ``''`` means
  ``<data_dir>/downloads/manual``.
* ``num_workers`` (int, 0): grain worker processes (0: transforms run in threads of this
  process).
* ``prefetch`` (int, 2): batches prepared ahead of the consumer, per worker.
* ``read_threads`` (int, 4): threads decoding and transforming in each process.
* ``cache_in_memory`` (bool, False): read and decode the split once when its iterator is made
  and keep the examples in memory (read-only), so each element costs only its augmentation;
  for datasets that fit in memory many times over (``digits``: 4.6 MB, on by default).
* ``normalization`` (str): ``'imagenet'``, ``'caffe_bgr'``, ``'salnet'`` or ``'none'``
  (:func:`jaxseg.data.transforms.normalize`).
* ``train_split``, ``eval_split`` (str): the tfds split names the engine trains and evaluates on
  (tfds slicing such as ``'train[:90%]'`` is accepted).
* ``skip_corrupt`` (bool, False): skip undecodable images while building (counted in the log)
  instead of raising.
* ``download`` (bool, False): builders that can download (VOC 2012) may do so when the manual
  files are absent.

Task options (defaults differ per dataset; :func:`describe` prints them):

* classification: ``image_size`` (int, output side), ``augment`` (``'resize'``, ``'imagenet'``:
  random-resized-crop for training and resize-then-centre-crop for evaluation, ``'cifar'``: pad
  and random crop), ``crop_padding`` (int, pad then randomly crop back, 0: off), ``pad_mode``,
  ``crop_scale``, ``crop_ratio``, ``eval_resize``, ``flip`` (bool; None: the recipe's default),
  ``photometric`` (float, jitter strength, 0: off).
* segmentation: ``crop_size`` (int, training crop side), ``eval_size`` (int, evaluation images
  are shrunk to fit and padded to this side, the mask with 255), ``scale_range`` ((low, high)
  random rescaling), ``flip``, ``photometric``.
* saliency: ``image_size`` ((h, w) network input), ``map_size`` ((h, w) of ``density`` and
  ``fixations``), ``flip``, ``photometric``.

Dataset options are listed with each dataset in :data:`jaxseg.data.registry.DATASETS`; an
option that a dataset does not define raises a ValueError naming it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ['AUGMENTS', 'COMMON_OPTIONS', 'TASK_OPTIONS', 'as_dict', 'resolve']


COMMON_OPTIONS: dict[str, tuple[Any, str]] = {
  'name': ('', "the dataset's name in this registry"),
  'data_dir': ('', "cache of prepared datasets; '' -> $JAXSEG_DATA_DIR or ~/jaxseg_data"),
  'manual_dir': ('', "manually downloaded files; '' -> <data_dir>/downloads/manual"),
  'num_workers': (0, 'grain worker processes (0: threads of this process)'),
  'prefetch': (2, 'batches prepared ahead, per worker'),
  'read_threads': (4, 'threads decoding and transforming in each process'),
  'cache_in_memory': (False, 'decode the split once and keep it in memory (small datasets)'),
  'skip_corrupt': (False, 'skip undecodable images while building, counted in the log'),
  'download': (False, 'download when manual files are absent (builders that can)'),
}

_NORMALIZATION_DOC = "'imagenet' | 'caffe_bgr' | 'salnet' | 'none' ([0, 1])"
AUGMENTS = ('resize', 'imagenet', 'cifar')
_CLASSIFICATION = {
  'image_size': (32, 'output side in pixels (int or (h, w))'),
  'augment': (
    'resize',
    "'resize': resize to image_size (+ crop_padding, flip); 'imagenet': "
    'train random-resized-crop + flip, eval shorter side to eval_resize '
    "then centre crop; 'cifar': pad crop_padding, random crop, flip",
  ),
  'crop_padding': (
    0,
    "training ('resize', 'cifar'): pad by this many pixels then crop back at random (0: off)",
  ),
  'pad_mode': (
    'mean',
    "fill of crop_padding: 'mean' (mean pixel), 'zeros' (black, as "
    "torchvision's RandomCrop), 'reflect'",
  ),
  'crop_scale': ((0.08, 1.0), "'imagenet' training: area fraction range of the random crop"),
  'crop_ratio': ((3 / 4, 4 / 3), "'imagenet' training: width/height range of the random crop"),
  'eval_resize': (256, "'imagenet' evaluation: shorter side before the centre crop"),
  'flip': (
    None,
    "training: random horizontal flips; None: on for augment 'imagenet' and "
    "'cifar', off for 'resize'",
  ),
  'photometric': (0.0, 'training: brightness/contrast/saturation jitter strength (0: off)'),
  'normalization': ('none', _NORMALIZATION_DOC),
}
_SEGMENTATION = {
  'crop_size': (321, 'training crop side (padded with the mean / 255 when smaller)'),
  'eval_size': (513, 'evaluation: shrink to fit, then pad to this side (mask padded with 255)'),
  'scale_range': ((0.5, 2.0), 'training: random rescaling range ((1, 1): off)'),
  'flip': (True, 'training: random horizontal flips'),
  'photometric': (0.0, 'training: brightness/contrast/saturation jitter strength (0: off)'),
  'normalization': ('imagenet', _NORMALIZATION_DOC),
}
_SALIENCY = {
  'image_size': ((240, 320), 'network input (h, w)'),
  'map_size': ((240, 320), "(h, w) of 'density' and 'fixations'"),
  'flip': (True, 'training: random horizontal flips (maps flip with the image)'),
  'photometric': (0.0, 'training: brightness/contrast/saturation jitter strength (0: off)'),
  'normalization': ('imagenet', _NORMALIZATION_DOC),
}
TASK_OPTIONS = {
  'classification': _CLASSIFICATION,
  'segmentation': _SEGMENTATION,
  'saliency': _SALIENCY,
}


def as_dict(data_config) -> dict:
  """``config.data`` (a ``ConfigDict`` or a mapping) as a plain dict."""
  if hasattr(data_config, 'to_dict'):
    return data_config.to_dict()
  if isinstance(data_config, Mapping):
    return dict(data_config)
  raise TypeError(
    f'data_config must be a ConfigDict or a mapping, got {type(data_config).__name__}.'
  )


def _check_option_types(options: dict) -> None:
  from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top

  if options['normalization'] not in transforms.NORMALIZATIONS:
    raise ValueError(
      f'data.normalization must be one of {transforms.NORMALIZATIONS}, got '
      f'{options["normalization"]!r}.'
    )
  for key in ('num_workers', 'prefetch', 'read_threads'):
    value = options[key]
    if (
      not isinstance(value, int)
      or isinstance(value, bool)
      or value < (1 if key == 'read_threads' else 0)
    ):
      raise ValueError(
        f'data.{key} must be a non-negative int (read_threads positive), got {value!r}.'
      )
  if not isinstance(options['cache_in_memory'], bool):
    raise ValueError(
      f'data.cache_in_memory must be True or False, got {options["cache_in_memory"]!r}.'
    )
  _check_sizes_and_strengths(options)
  if 'augment' in options:
    _check_classification_options(options)


_SIZE_OPTIONS = (
  'image_size',
  'map_size',
  'crop_size',
  'eval_size',
  'eval_resize',
  'synthetic_size',
  'digits_size',
)


def _check_sizes_and_strengths(options: dict) -> None:
  """Sizes are positive ints or (h, w) pairs; strengths finite and non-negative. Checked here,
  when the config is read, not at the first batch."""
  for key in _SIZE_OPTIONS:
    value = options.get(key)
    if value is None:
      continue
    sides = value if isinstance(value, tuple) else (value,)
    if (
      len(sides) not in (1, 2)
      or isinstance(value, tuple)
      and len(sides) != 2
      or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sides)
    ):
      raise ValueError(
        f'data.{key} must be a positive int or a pair (h, w) of positive ints, got {value!r}.'
      )
  if 'photometric' in options:
    value = options['photometric']
    if (
      not isinstance(value, (int, float))
      or isinstance(value, bool)
      or not math.isfinite(value)
      or value < 0
    ):
      raise ValueError(f'data.photometric must be a finite number >= 0 (0: off), got {value!r}.')
  if options.get('scale_range') is not None:
    value = options['scale_range']
    if (
      not isinstance(value, tuple)
      or len(value) != 2
      or not all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) and s > 0
        for s in value
      )
      or value[0] > value[1]
    ):
      raise ValueError(f'data.scale_range must be (low, high) with 0 < low <= high, got {value!r}.')


def _check_classification_options(options: dict) -> None:
  augment, pad_mode = options['augment'], options['pad_mode']
  if augment not in AUGMENTS:
    raise ValueError(f'data.augment must be one of {AUGMENTS}, got {augment!r}.')
  from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top

  if pad_mode not in transforms.PAD_MODES:
    raise ValueError(f'data.pad_mode must be one of {transforms.PAD_MODES}, got {pad_mode!r}.')
  padding = options['crop_padding']
  if not isinstance(padding, int) or isinstance(padding, bool) or padding < 0:
    raise ValueError(f'data.crop_padding must be a non-negative int, got {padding!r}.')
  size = options['image_size']
  side = min(size) if isinstance(size, tuple) else size
  if padding >= side:
    raise ValueError(
      f'data.crop_padding ({padding}) must be smaller than the image side '
      f'data.image_size={size!r}: the random crop would see mostly padding.'
    )
  if augment == 'cifar' and padding == 0:
    raise ValueError(
      "data.augment='cifar' pads and crops back: set data.crop_padding > 0 (4 for CIFAR), got 0."
    )
  if augment == 'imagenet':
    if padding:
      raise ValueError(
        f"data.crop_padding ({padding}) has no meaning with augment='imagenet' "
        '(its random-resized-crop replaces it); set it to 0.'
      )
    size = options['image_size']
    side = max(size) if isinstance(size, tuple) else size
    resize = options['eval_resize']
    if not isinstance(resize, int) or isinstance(resize, bool) or resize < side:
      raise ValueError(
        f'data.eval_resize must be an int >= the image_size {size!r} it is '
        f'centre-cropped to, got {resize!r}.'
      )
  if options['flip'] is not None and not isinstance(options['flip'], bool):
    raise TypeError(f'data.flip must be a bool or None, got {options["flip"]!r}.')


def resolve(spec: Any, given: dict) -> dict:
  """The full options of dataset ``spec`` (defaults filled in) from the ``given`` ones, checked.

  Args:
    spec: the dataset's :class:`jaxseg.data.registry.DatasetSpec`.
    given: ``config.data`` as a dict (:func:`as_dict`).

  Returns:
    Every option the dataset accepts with its value.

  Raises:
    ValueError: for options the dataset does not define (named), or bad values.
  """
  accepted = spec.all_options()
  unknown = sorted(set(given) - set(accepted))
  if unknown:
    raise ValueError(
      f'Unknown option(s) {unknown} for dataset {spec.name!r}; it accepts {sorted(accepted)}.'
    )
  options = {key: default for key, (default, _) in accepted.items()}
  options.update(given)
  if spec.derive is not None:
    options.update(spec.derive(options))
  for key in ('scale_range', 'image_size', 'map_size', 'crop_scale', 'crop_ratio'):
    if isinstance(options.get(key), list):
      options[key] = tuple(options[key])
  _check_option_types(options)
  if spec.task == 'classification' and options['flip'] is None:
    options['flip'] = options['augment'] != 'resize'
  return options
