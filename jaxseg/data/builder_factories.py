"""Builder factories: a dataset's resolved options -> its tfds builder (not yet prepared).

Each dataset's :class:`~jaxseg.data.registry.DatasetSpec` names one of these as ``make_builder``
``(options, data_dir) -> tfds.core.DatasetBuilder``. The builder modules
(:mod:`jaxseg.data.builders`) are imported inside the functions so that importing the registry
stays cheap. ``image_folder``'s class discovery (options or ``classes.json``) lives here too: its
builder, class count, names and palette all read it.
"""

from __future__ import annotations

import os

__all__ = [
  'ade20k',
  'camvid',
  'camvid_classes',
  'camvid_palette',
  'cityscapes',
  'digits',
  'folder_classes',
  'image_folder',
  'image_folder_fingerprint',
  'mit',
  'pet',
  'salicon',
  'shapes',
  'synthetic_saliency',
  'tfds_classification',
  'voc',
]


def digits(options, data_dir):
  """scikit-learn's digits, upsampled and split as the options say."""
  from jaxseg.data.builders import classification  # pylint: disable=g-import-not-at-top

  config = classification.digits_config(
    image_size=options['digits_size'], num_test=options['num_test'], seed=options['split_seed']
  )
  return classification.Digits(data_dir=data_dir, config=config, file_format='array_record')


def tfds_classification(name):
  """A factory of tfds's ``name`` classification builder, built without TensorFlow."""

  def make(options, data_dir):
    del options
    from jaxseg.data.builders import classification  # pylint: disable=g-import-not-at-top

    return classification.tfds_classification_builder(name)(
      data_dir=data_dir, file_format='array_record'
    )

  return make


def pet(options, data_dir):
  """tfds's Oxford-IIIT Pet, built without TensorFlow."""
  del options
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.tf_free_oxford_iiit_pet()(data_dir=data_dir, file_format='array_record')


def cityscapes(options, data_dir):
  """tfds's Cityscapes (semantic segmentation config), built without TensorFlow."""
  del options
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.tf_free_cityscapes()(
    data_dir=data_dir, config='semantic_segmentation', file_format='array_record'
  )


def ade20k(options, data_dir):
  """ADE20K SceneParsing from ADEChallengeData2016.zip."""
  from jaxseg.data.builders import segmentation  # pylint: disable=g-import-not-at-top

  return segmentation.Ade20k(
    data_dir=data_dir,
    file_format='array_record',
    skip_corrupt=options['skip_corrupt'],
    allow_download=options['download'],
  )


def shapes(options, data_dir):
  """The synthetic shapes segmentation dataset the options describe."""
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


def synthetic_saliency(options, data_dir):
  """The synthetic saliency dataset the options describe."""
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


def folder_classes(options) -> tuple[tuple[str, ...], tuple | None]:
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
  names, _ = folder_classes(options)
  ignore = options['ignore_label']
  if not isinstance(ignore, int) or isinstance(ignore, bool) or not len(names) <= ignore <= 255:
    raise ValueError(
      f'data.ignore_label must be an int in [{len(names)}, 255] (not one of the '
      f'{len(names)} classes), got {ignore!r}.'
    )


def image_folder(options, data_dir):
  """The user's images and masks (options checked first)."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  _check_folder_options(options)
  names, palette = folder_classes(options)
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


def image_folder_fingerprint(options) -> str:
  """A digest of ``image_folder``'s folders and list files."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.folder_digest(
    [options[k] for k in ('images_dir', 'masks_dir', 'train_list', 'eval_list')], []
  )


def camvid(options, data_dir):
  """CamVid in SegNet's prepared layout."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CamVid(
    skip_corrupt=options['skip_corrupt'], data_dir=data_dir, file_format='array_record'
  )


def voc(kind):
  """A factory of VOC 2012 segmentation (``kind='voc'``) or VOC + SBD (``'sbd'``)."""

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


def salicon(options, data_dir):
  """SALICON, its density blurred with ``blur_sigma``."""
  from jaxseg.data.builders import saliency  # pylint: disable=g-import-not-at-top

  config = saliency.salicon_config(sigma=options['blur_sigma'])
  return saliency.Salicon(
    data_dir=data_dir,
    config=config,
    file_format='array_record',
    skip_corrupt=options['skip_corrupt'],
  )


def mit(kind):
  """A factory of MIT1003 (``kind='mit1003'``, a seeded validation hold-out) or MIT300."""

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


def camvid_classes() -> tuple[str, ...]:
  """CamVid's 11 class names."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CAMVID_CLASSES


def camvid_palette() -> tuple[tuple[int, int, int], ...]:
  """CamVid's colour per class."""
  from jaxseg.data.builders import folder  # pylint: disable=g-import-not-at-top

  return folder.CAMVID_PALETTE
