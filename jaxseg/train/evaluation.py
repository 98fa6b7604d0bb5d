"""Evaluating a trained run without changing it: ``python -m experiments.evaluate`` as a library.

Two paths:

* **As trained** (no test-time recipe): the run's own eval pipeline, the training loop's jitted
  eval step on the same mesh and the task's metric sums, so on the run's eval split the numbers
  equal those ``metrics.jsonl`` logged for that step. Parameters and batch statistics are only
  read (inference mode), never updated.
* **With a recipe** (segmentation: sliding windows, multi-scale, flips, the dense CRF): the eval
  images pass through :class:`jaxseg.inference.segmentation.SegmentationPredictor` (and
  :func:`jaxseg.crf.dense_crf` on the original pixels), and the same task sums score them.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxseg.train import sharding
from jaxseg.train import steps
from jaxseg.train.inference import InferenceRun


@dataclasses.dataclass(frozen=True)
class Recipe:
  """Test-time options for segmentation (all off: evaluate as trained).

  Attributes:
    sliding_window: ``(crop, stride)`` in pixels, or None for whole images.
    scales: test-time scales (``(1.0,)``: none).
    flip: add horizontally mirrored predictions.
    crf: refine the softmax with the dense CRF (``crf_options`` or the config's ``crf`` block).
    crf_options: keyword options of :func:`jaxseg.crf.dense_crf`, overriding the config's.
  """

  sliding_window: tuple[int, int] | None = None
  scales: tuple[float, ...] = (1.0,)
  flip: bool = False
  crf: bool = False
  crf_options: Mapping[str, Any] | None = None

  @property
  def as_trained(self) -> bool:
    return (
      self.sliding_window is None
      and tuple(self.scales) == (1.0,)
      and not self.flip
      and not self.crf
    )

  def describe(self) -> str:
    parts = []
    if self.sliding_window:
      parts.append(f'sliding window {self.sliding_window[0]} stride {self.sliding_window[1]}')
    if tuple(self.scales) != (1.0,):
      parts.append('scales ' + ','.join(f'{s:g}' for s in self.scales))
    if self.flip:
      parts.append('flip')
    if self.crf:
      parts.append('dense CRF')
    return ', '.join(parts) or 'as trained'


def parse_sliding_window(text: str) -> tuple[int, int] | None:
  """``'513,341'`` -> ``(513, 341)``; ``''`` -> None.

  Raises:
    ValueError: naming ``--sliding_window`` and what is expected.
  """
  if not text:
    return None
  try:
    crop, stride = (int(v) for v in text.split(','))
  except ValueError:
    raise ValueError(
      f"--sliding_window must be 'CROP,STRIDE' (two positive ints), got {text!r}."
    ) from None
  if crop < 1 or stride < 1:
    raise ValueError(f'--sliding_window crop and stride must be positive, got {text!r}.')
  return crop, stride


def parse_scales(text: str) -> tuple[float, ...]:
  """``'1,0.75,0.5'`` -> ``(1.0, 0.75, 0.5)``; ``''`` -> ``(1.0,)``.

  Raises:
    ValueError: naming ``--scales`` and what is expected.
  """
  if not text:
    return (1.0,)
  try:
    scales = tuple(float(v) for v in text.split(','))
  except ValueError:
    raise ValueError(
      f"--scales must be comma-separated positive numbers such as '1,0.75,0.5', got {text!r}."
    ) from None
  if not all(math.isfinite(s) and s > 0 for s in scales):
    raise ValueError(f'--scales must be finite and positive, got {text!r}.')
  return scales


class _VariablesOnly:
  """What the eval step reads of a train state: ``variables()`` (no optimizer state)."""

  def __init__(self, variables):
    self._variables = variables

  def variables(self):
    return self._variables


def _eval_iterator(run: InferenceRun, split: str):
  from jaxseg import data  # pylint: disable=g-import-not-at-top

  return data.make_iterator(
    run.config.data,
    split=split,
    global_batch_size=run.config.batch_size,
    seed=run.config.seed,
    train=False,
    process_index=jax.process_index(),
    process_count=jax.process_count(),
    num_epochs=1,
  )


def _with_valid(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  batch = dict(batch)
  batch.setdefault('valid', np.ones(len(next(iter(batch.values()))), bool))
  return batch


def _sum_batches(sums_of_batches) -> Any:
  total = None
  for sums in sums_of_batches:
    total = sums if total is None else jax.tree.map(jnp.add, total, sums)
  if total is None:
    raise ValueError('the evaluation split produced no batches')
  return jax.device_get(total)


def _as_trained_sums(run: InferenceRun, batches) -> Any:
  """The training loop's eval step on the run's mesh: the numbers training logged."""
  mesh = sharding.make_mesh(run.config.mesh)
  replicated = sharding.replicated(mesh)
  variables = jax.device_put(run.variables, replicated)
  eval_fn = steps.make_eval_step(model=run.model, task=run.task, config=run.config)
  eval_step = jax.jit(
    lambda v, batch: eval_fn(_VariablesOnly(v), batch),
    in_shardings=(replicated, sharding.batch_sharding(mesh)),
    out_shardings=replicated,
  )
  return _sum_batches(
    eval_step(variables, sharding.make_global_batch(_with_valid(b), mesh)) for b in batches
  )


def crf_options(run: InferenceRun, recipe: Recipe) -> dict[str, Any]:
  """The dense-CRF options: the config's ``crf`` block (if any), then the recipe's overrides."""
  options = {}
  block = run.config.get('crf') if hasattr(run.config, 'get') else None
  if block is not None:
    options.update({k: v for k, v in block.to_dict().items() if k != 'enabled'})
  options.update(recipe.crf_options or {})
  return options


def segmentation_logits(
  run: InferenceRun, images: np.ndarray, recipe: Recipe, pixels: np.ndarray | None = None
) -> np.ndarray:
  """Log-probabilities ``(N, H, W, K)`` of normalised ``images`` under ``recipe``.

  The probabilities are :class:`jaxseg.inference.segmentation.SegmentationPredictor`'s: averaged
  over the recipe's scales and flips, then (``recipe.crf``) the dense CRF's marginals on the
  original pixels.

  Args:
    run: the loaded run.
    images: ``(N, H, W, 3)`` network inputs (normalised).
    recipe: the test-time recipe.
    pixels: ``(N, H, W, 3)`` uint8 originals for the CRF (default: denormalised ``images``).
  """
  from jaxseg.data import transforms  # pylint: disable=g-import-not-at-top
  from jaxseg.inference import segmentation as seg_inference  # pylint: disable=g-import-not-at-top

  variables = run.variables
  model = run.model
  predictor = seg_inference.SegmentationPredictor(
    lambda x: model.apply(variables, x, train=False)[0],
    mode='slide' if recipe.sliding_window else 'whole',
    crop_size=recipe.sliding_window[0] if recipe.sliding_window else None,
    stride=recipe.sliding_window[1] if recipe.sliding_window else None,
    scales=tuple(recipe.scales),
    flip=recipe.flip,
    crf=(crf_options(run, recipe) or True) if recipe.crf else None,
  )  # True: the defaults
  if recipe.crf and pixels is None:
    pixels = transforms.denormalize(images, run.info.normalization)
  probs = predictor(images, pixels) if recipe.crf else predictor(images)
  return np.log(np.maximum(np.asarray(probs, np.float32), 1e-12))


def _recipe_sums(run: InferenceRun, batches, recipe: Recipe) -> Any:
  if run.info.task != 'segmentation':
    raise ValueError(
      f'test-time recipes ({recipe.describe()}) apply to segmentation runs; '
      f'this run is {run.info.task!r}.'
    )
  eval_sums = jax.jit(lambda logits, batch: run.task.eval_sums(logits, {}, batch))
  return _sum_batches(
    eval_sums(jnp.asarray(segmentation_logits(run, batch['image'], recipe)), _with_valid(batch))
    for batch in batches
  )


def evaluate_run(
  run: InferenceRun, *, split: str | None = None, recipe: Recipe = Recipe(), max_batches: int = -1
) -> dict[str, float]:
  """Evaluates ``run`` on ``split`` and returns the task's metrics (nothing is written).

  Args:
    run: from :func:`jaxseg.train.load_run`.
    split: the dataset split; None: the run's eval split.
    recipe: test-time options (default: as trained, reproducing the logged numbers).
    max_batches: stop after this many batches (-1: the whole split).

  Returns:
    The task's finalised metrics (segmentation: ``mean_iou``, ``iou/<class>`` ...).
  """
  split = split or run.info.eval_split
  iterator = _eval_iterator(run, split)

  def batches():
    for i, batch in enumerate(iterator):
      if 0 <= max_batches <= i:
        return
      yield batch

  sums = (
    _as_trained_sums(run, batches()) if recipe.as_trained else _recipe_sums(run, batches(), recipe)
  )
  return run.task.finalize(sums)


def metrics_table(task: Any, metrics: Mapping[str, float], *, name: str = 'model') -> str:
  """The task's table: the lecture's saliency table, or every metric with per-class IoU by name.

  Args:
    task: the bound task (its ``name`` picks the layout), or None.
    metrics: the finalised metrics.
    name: the row name of the saliency table.

  Example:
    >>> print(metrics_table(None, {'mean_iou': 0.5, 'iou/cat': 0.25}))
    metric      value
    mean_iou   0.5000
    <BLANKLINE>
    class         IoU
    cat        0.2500
  """
  if getattr(task, 'name', None) == 'saliency':
    from jaxseg.inference import saliency  # pylint: disable=g-import-not-at-top

    return saliency.format_table({name: metrics})
  overall = {k: v for k, v in metrics.items() if '/' not in k}
  per_class = {k.split('/', 1)[1]: v for k, v in metrics.items() if k.startswith('iou/')}
  width = max([len(k) for k in [*overall, *per_class, 'metric', 'class']]) + 2
  lines = [f'{"metric":<{width}}{"value":>7}']
  lines += [f'{key:<{width}}{value:>7.4f}' for key, value in overall.items()]
  if per_class:
    lines += ['', f'{"class":<{width}}{"IoU":>7}']
    lines += [f'{key:<{width}}{value:>7.4f}' for key, value in per_class.items()]
  return '\n'.join(lines)


def write_results(
  workdir: str, split: str, step: int, metrics: Mapping[str, float], recipe: Recipe
) -> str:
  """Writes ``<workdir>/eval_<split>_<step>.json`` (``_<recipe>`` added unless as trained)."""
  suffix = (
    ''
    if recipe.as_trained
    else '_' + ''.join(c if c.isalnum() else '_' for c in recipe.describe()).strip('_')
  )
  safe_split = ''.join(c if c.isalnum() else '_' for c in split)
  path = os.path.join(workdir, f'eval_{safe_split}_{step}{suffix}.json')
  record = {
    'step': step,
    'split': split,
    'recipe': recipe.describe(),
    'metrics': {
      k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in metrics.items()
    },
  }
  with open(path + '.tmp', 'w') as f:
    json.dump(record, f, indent=2)
  os.replace(path + '.tmp', path)
  return path


def logged_metrics(workdir: str, step: int, split: str = 'eval') -> dict[str, float] | None:
  """The metrics ``metrics.jsonl`` logged for ``step``'s evaluation (the last such record)."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.isfile(path):
    return None
  found = None
  with open(path) as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if record.get('step') == step and record.get('split') == split:
        found = record
  return found
