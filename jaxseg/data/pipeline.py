"""grain input pipelines over tfds ArrayRecord data sources.

:func:`make_iterator` is what the training engine calls. Training iterators are infinite (or
``num_epochs`` long), shuffled with a seed, augmented, and sharded per host; evaluation
iterators make one ordered pass over the split, padding the last global batch and marking real
examples with ``'valid'``. Both are grain ``DatasetIterator``s underneath, so their position is
saved and restored with ``get_state``/``set_state``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxseg.data import preparation, registry
from jaxseg.data import transforms as T
from jaxseg.ops._validation import pair

__all__ = ['DataIterator', 'dataset_info', 'make_iterator', 'process_sample']


def _ensure_flags_parsed() -> None:
  # grain reads absl flags (e.g. grain_py_debug_mode). Binaries parse them and tests/conftest.py
  # marks them parsed; a notebook or a user's script has done neither, and grain would raise.
  from absl import flags  # pylint: disable=g-import-not-at-top

  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def dataset_info(data_config) -> registry.DatasetInfo:
  """Describes the dataset of ``config.data``, preparing it first if needed (cached).

  Args:
    data_config: ``config.data`` (a ``ConfigDict`` or mapping): ``name`` and options.

  Returns:
    A :class:`jaxseg.data.registry.DatasetInfo`.

  Example:
    >>> import tempfile
    >>> config = {'name': 'shapes_segmentation', 'synthetic_size': 16, 'num_train': 8,
    ...           'num_test': 4, 'data_dir': tempfile.mkdtemp()}   # generated offline, cached
    >>> info = dataset_info(config)
    >>> info.num_classes, info.image_shape, info.splits
    (4, (16, 16, 3), {'test': 4, 'train': 8})
  """
  spec, options = registry.resolve_options(data_config)
  builder = preparation.prepared_builder(spec, options)
  splits = {name: int(split.num_examples) for name, split in sorted(builder.info.splits.items())}
  return registry.DatasetInfo(
    task=spec.task,
    num_classes=int(spec.num_classes(options)),
    ignore_label=spec.ignore_label,
    image_shape=_output_hw(spec.task, options, train=True) + (3,),
    splits=splits,
    eval_image_shape=_output_hw(spec.task, options, train=False) + (3,),
    map_shape=(pair(options['map_size'], 'data.map_size') if spec.task == 'saliency' else None),
    train_split=options['train_split'],
    eval_split=options['eval_split'],
    class_names=spec.names(options) if spec.task != 'saliency' else (),
    palette=spec.palette_of(options),
    normalization=options['normalization'],
  )


def _output_hw(task: str, options: dict, *, train: bool) -> tuple[int, int]:
  if task == 'classification':
    return pair(options['image_size'], 'data.image_size')
  if task == 'segmentation':
    key = 'crop_size' if train else 'eval_size'
    return pair(options[key], f'data.{key}')
  return pair(options['image_size'], 'data.image_size')


def _classification_geometry(
  sample: dict, options: dict, *, rng: np.random.Generator | None, mean_pad: np.ndarray
) -> dict:
  """The geometric part of a classification recipe (``options['augment']``), before flips.

  * ``'imagenet'``: training takes a random-resized-crop (``crop_scale``, ``crop_ratio``) to
    ``image_size``; evaluation resizes the shorter side to ``eval_resize`` and centre-crops
    ``image_size`` (torchvision's ImageNet reference recipe).
  * ``'resize'`` and ``'cifar'``: resize to ``image_size``; training pads ``crop_padding`` pixels
    (``pad_mode``: the mean pixel, zeros or a reflection) and crops ``image_size`` back at random.
  """
  size = pair(options['image_size'], 'data.image_size')
  if options['augment'] == 'imagenet':
    if rng is None:
      return T.center_crop(T.resize_shorter_side(sample, options['eval_resize']), size)
    return T.random_resized_crop(
      sample, size, rng=rng, scale=options['crop_scale'], ratio=options['crop_ratio']
    )
  sample = T.resize(sample, size)
  if rng is None or not options['crop_padding']:
    return sample
  mode = options['pad_mode']
  fill = np.zeros(3, np.uint8) if mode == 'zeros' else mean_pad
  sample = T.pad_sides(
    sample,
    options['crop_padding'],
    image_pad=fill,
    mode='reflect' if mode == 'reflect' else 'constant',
  )
  return T.random_crop(sample, size, rng=rng, image_pad=fill)


def process_sample(
  sample: dict,
  *,
  task: str,
  options: dict,
  ignore_label: int | None,
  rng: np.random.Generator | None,
) -> dict:
  """Augments (``rng`` given) or deterministically prepares one sample, then normalises it.

  Training (``rng`` is a generator): segmentation rescales by ``scale_range``, crops
  ``crop_size`` (padding with the mean and the ignore label), flips; classification follows
  ``augment`` (:func:`_classification_geometry`), then flips; saliency resizes to
  ``image_size`` (maps to ``map_size``) and flips everything together. Photometric jitter runs last
  on the image only. Evaluation (``rng`` is None): segmentation shrinks to fit ``eval_size`` and
  pads; classification resizes (``augment='imagenet'``: the shorter side to ``eval_resize``, then
  the centre ``image_size`` crop); saliency resizes.

  Args:
    sample: a :mod:`jaxseg.data.transforms` sample with uint8 image.
    task: ``'classification'`` | ``'segmentation'`` | ``'saliency'``.
    options: the resolved dataset options.
    ignore_label: mask padding value.
    rng: the example's generator, or None for evaluation.

  Returns:
    The batch element: ``image`` float32 normalised, plus ``label`` int32, or ``mask`` int32, or
    ``density`` float32 (maximum 1, all zeros without fixations) and ``fixations`` uint8.
  """
  pad = T.mean_pixel(options['normalization'])
  train = rng is not None
  if task == 'segmentation':
    if train:
      sample = T.random_scale_crop(
        sample,
        options['crop_size'],
        rng=rng,
        scale_range=options['scale_range'],
        image_pad=pad,
        ignore_label=ignore_label,
      )
    else:
      sample = T.fit_and_pad(sample, options['eval_size'], image_pad=pad, ignore_label=ignore_label)
  elif task == 'classification':
    sample = _classification_geometry(sample, options, rng=rng, mean_pad=pad)
  else:
    image = T.resize({'image': sample['image']}, options['image_size'])['image']
    maps = T.resize(
      {'density': sample['density'], 'fixations': sample['fixations']}, options['map_size']
    )
    sample = dict(sample, image=image, density=maps['density'], fixations=maps['fixations'])
  if train and options['flip']:
    if task == 'saliency':
      if rng.uniform() < 0.5:
        sample = dict(
          sample,
          image=sample['image'][:, ::-1],
          density=sample['density'][:, ::-1],
          fixations=sample['fixations'][:, ::-1],
        )
    else:
      sample = T.random_horizontal_flip(sample, rng=rng)
  image = sample['image']
  if train and options['photometric']:
    s = float(options['photometric'])
    image = T.photometric_jitter(image, rng=rng, brightness=s, contrast=s, saturation=s)
  out = {'image': T.normalize(image, options['normalization'])}
  if task == 'classification':
    out['label'] = np.int32(sample['label'])
  elif task == 'segmentation':
    out['mask'] = np.ascontiguousarray(sample['mask'], np.int32)
  else:
    density = np.ascontiguousarray(sample['density'], np.float32)
    # Step 3 of the density's scales (docs/saliency.md): peak 1 again after the resize.
    peak = float(density.max())
    out['density'] = density / peak if peak > 0 else density
    out['fixations'] = np.ascontiguousarray(sample['fixations'], np.uint8)
  return out


# ---------------------------------------------------------------------------------------------
# grain transformations (picklable classes, so worker processes can run them).


@dataclasses.dataclass
class _Prepare:
  """Decodes a record and prepares it for evaluation (deterministic)."""

  spec: Any
  options: dict

  def __call__(self, record):
    sample = self.spec.decode(record, self.options)
    return process_sample(
      sample,
      task=self.spec.task,
      options=self.options,
      ignore_label=self.spec.ignore_label,
      rng=None,
    )


@dataclasses.dataclass
class _Augment:
  """Decodes a record and augments it with grain's per-element generator."""

  spec: Any
  options: dict

  def __call__(self, record, rng: np.random.Generator):
    sample = self.spec.decode(record, self.options)
    return process_sample(
      sample,
      task=self.spec.task,
      options=self.options,
      ignore_label=self.spec.ignore_label,
      rng=rng,
    )


@dataclasses.dataclass
class _PaddedEvalElement:
  """Element ``k`` of a host's eval stream: global batch ``k // L``, slot ``k % L`` of this host.

  Global batch ``b`` holds examples ``[b G, (b + 1) G)``; host ``p`` feeds slots
  ``[p L, (p + 1) L)`` of it (``L = G / process_count``), so hosts are disjoint, together cover the
  split, and each global batch is assembled in order. Positions past the split repeat example 0
  with ``valid=False``.
  """

  source: Any
  prepare: _Prepare
  num_examples: int
  global_batch_size: int
  local_batch_size: int
  process_index: int

  def __call__(self, k):
    k = int(k)
    batch, slot = divmod(k, self.local_batch_size)
    index = batch * self.global_batch_size + self.process_index * self.local_batch_size + slot
    valid = index < self.num_examples
    element = self.prepare(self.source[index if valid else 0])
    element['valid'] = np.bool_(valid)
    return element


def _stack(elements):
  return {key: np.stack([e[key] for e in elements]) for key in elements[0]}


class DataIterator:
  """The iterator :func:`make_iterator` returns: numpy batches and a checkpointable position.

  ``get_state()`` returns grain's iterator state, a dict of JSON-serialisable values (ints and
  strings), which the engine stores as JSON; ``set_state(state)`` on an iterator made with the
  same arguments resumes exactly at that position.
  """

  def __init__(self, dataset, *, num_batches: int | None, element_spec: dict | None = None):
    self._dataset = dataset
    self._iterator = iter(dataset)
    self.num_batches = num_batches  # eval: batches in the pass; train: None (or epochs' total)
    self.element_spec = element_spec

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    return next(self._iterator)

  def get_state(self) -> dict:
    """The position, as a JSON-serialisable dict."""
    return self._iterator.get_state()

  def set_state(self, state: dict) -> None:
    """Moves to a position returned by :meth:`get_state` of an identically made iterator."""
    if not isinstance(state, dict):
      raise TypeError(f'state must be the dict get_state() returned, got {type(state).__name__}.')
    self._iterator.set_state(state)

  def close(self) -> None:
    """Stops worker processes, if any."""
    close = getattr(self._iterator, 'close', None)
    if close is not None:
      close()


def _derive_seed(*parts: int) -> int:
  # grain seeds must fit in 32 bits; SeedSequence mixes the parts so nearby seeds decorrelate.
  return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def make_iterator(
  data_config,
  *,
  split: str,
  global_batch_size: int,
  seed: int,
  train: bool,
  process_index: int = 0,
  process_count: int = 1,
  num_epochs: int | None = None,
) -> DataIterator:
  """A grain iterator over ``split`` of the dataset ``config.data`` names, for this host.

  Training (``train=True``): this host reads the contiguous shard ``p`` of ``process_count``
  equal shards of the split (the remainder is dropped), shuffles it with a seed derived from
  ``(seed, p)`` and reshuffles every epoch, augments each element with a generator seeded by
  ``(seed, p)`` and the element's position (so resuming reproduces the same augmentation), and
  repeats forever (``num_epochs=None``) or ``num_epochs`` times, dropping incomplete batches.

  Evaluation (``train=False``): one ordered pass; global batch ``b`` holds examples
  ``[b G, (b + 1) G)`` split evenly over hosts, the last one padded with ``valid=False`` examples.
  Every host yields the same number of batches, ``ceil(N / G)``.

  Args:
    data_config: ``config.data``: ``name`` and options (see :mod:`jaxseg.data.registry`).
    split: tfds split name (``'train'``, ``'test'``, ``'validation'``, slices like
      ``'train[:10%]'``).
    global_batch_size: examples per step over all hosts, divisible by ``process_count``.
    seed: the pipeline seed.
    train: training (shuffle, augment, repeat) or evaluation (ordered, padded, one pass).
    process_index: this host, ``jax.process_index()``.
    process_count: hosts, ``jax.process_count()``.
    num_epochs: training epochs before ``StopIteration``; None: infinite. Ignored when
      ``train=False``.

  Returns:
    A :class:`DataIterator` yielding dicts of numpy arrays with leading dimension
    ``global_batch_size // process_count``: classification ``image`` float32 ``(B, H, W, 3)`` and
    ``label`` int32 ``(B,)``; segmentation ``image`` and ``mask`` int32 ``(B, H, W)`` (255 =
    ignore); saliency ``image``, ``density`` float32 ``(B, h, w)`` and ``fixations`` uint8
    ``(B, h, w)``. Evaluation batches add ``valid`` bool ``(B,)``.

  Example:
    >>> import tempfile
    >>> config = {'name': 'shapes_segmentation', 'synthetic_size': 16, 'num_train': 8,
    ...           'num_test': 4, 'data_dir': tempfile.mkdtemp()}
    >>> it = make_iterator(config, split='train', global_batch_size=4, seed=0, train=True)
    >>> batch = next(it); batch['image'].shape, batch['mask'].dtype
    ((4, 16, 16, 3), dtype('int32'))
  """
  _check_int(global_batch_size, 'global_batch_size', minimum=1)
  _check_int(process_count, 'process_count', minimum=1)
  _check_int(process_index, 'process_index', minimum=0)
  if process_index >= process_count:
    raise ValueError(
      f'process_index must be in [0, process_count={process_count}), got {process_index}.'
    )
  if global_batch_size % process_count:
    raise ValueError(
      f'global_batch_size ({global_batch_size}) must be divisible by '
      f'process_count ({process_count}).'
    )
  if num_epochs is not None:
    _check_int(num_epochs, 'num_epochs', minimum=1)
  _ensure_flags_parsed()
  import grain  # pylint: disable=g-import-not-at-top

  spec, options = registry.resolve_options(data_config)
  builder = preparation.prepared_builder(spec, options)
  source = builder.as_data_source(split)
  if options['cache_in_memory']:
    source = _in_memory(source)
  num_examples = len(source)
  local = global_batch_size // process_count

  if train:
    shard = num_examples // process_count
    if shard < local:
      raise ValueError(
        f'split {split!r} has {num_examples} examples, {shard} per host: fewer than the local '
        f'batch size {local} (global_batch_size={global_batch_size}, '
        f'process_count={process_count}).'
      )
    ds = grain.MapDataset.source(source)[process_index * shard : (process_index + 1) * shard]
    ds = ds.shuffle(seed=_derive_seed(seed, process_index, 1)).repeat(num_epochs)
    ds = ds.random_map(_Augment(spec, options), seed=_derive_seed(seed, process_index, 2))
    ds = ds.batch(local, drop_remainder=True, batch_fn=_stack)
    num_batches = None if num_epochs is None else (shard * num_epochs) // local
  else:
    num_batches = max(1, math.ceil(num_examples / global_batch_size))
    ds = grain.MapDataset.range(num_batches * local).map(
      _PaddedEvalElement(
        source, _Prepare(spec, options), num_examples, global_batch_size, local, process_index
      )
    )
    ds = ds.batch(local, drop_remainder=False, batch_fn=_stack)

  iter_ds = ds.to_iter_dataset(
    grain.ReadOptions(
      num_threads=options['read_threads'],
      prefetch_buffer_size=max(options['read_threads'], options['prefetch']),
    )
  )
  if options['num_workers'] > 0:
    iter_ds = iter_ds.mp_prefetch(
      grain.MultiprocessingOptions(
        num_workers=options['num_workers'], per_worker_buffer_size=max(1, options['prefetch'])
      )
    )
  return DataIterator(iter_ds, num_batches=num_batches)


def _in_memory(source) -> list:
  """Every example of ``source`` read and decoded once (tfds parses the record and decodes its
  images), its arrays read-only so that no transform can change the copy every epoch reads.

  A list is a random-access source for grain as the ArrayRecord source is, indexed the same, so
  shuffling, sharding and checkpointed positions are unchanged. Measured on the ``digits``
  pipeline (issue 16; batches of 64, one thread): 8.4 -> 3.7 ms a batch (reading, parsing and
  decoding were half of an element's ~0.13 ms).
  """
  examples = [source[i] for i in range(len(source))]
  for example in examples:
    _freeze(example)
  return examples


def _freeze(value) -> None:
  if isinstance(value, np.ndarray):
    value.flags.writeable = False
  elif isinstance(value, (dict, list, tuple)):
    for item in value.values() if isinstance(value, dict) else value:
      _freeze(item)


def _check_int(value, name: str, *, minimum: int) -> None:
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < minimum:
    raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}.')
