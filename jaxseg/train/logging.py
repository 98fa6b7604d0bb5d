"""Run logging: ``metrics.jsonl``, TensorBoard events, a console progress line, the resolved config
and the parameter table.

Only process 0 writes files and prints; the others log nothing.
"""

import collections
import json
import math
import os
import sys
import time
from typing import Any, Mapping, TextIO

import jax
import ml_collections

from jaxseg.train import tensorboard
from jaxseg.train.optimizers import param_path


def _jsonable(value: Any) -> Any:
  if hasattr(value, 'item') and getattr(value, 'ndim', 1) == 0:
    value = value.item()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf
  return value


def save_config(config: ml_collections.ConfigDict, workdir: str) -> str:
  """Writes the resolved config to ``<workdir>/config.json`` and returns the path."""
  path = os.path.join(workdir, 'config.json')
  if jax.process_index() == 0:
    with open(path, 'w') as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  return path


def parameter_table(params: Any, *, depth: int = 2) -> tuple[str, int]:
  """Returns a text table of parameter counts per module (path prefix of ``depth`` keys) and the
  total.

  Args:
    params: the params pytree (arrays or ``ShapeDtypeStruct``).
    depth: how many path components name a module.

  Returns:
    ``(table, total)``.

  Example:
    >>> table, total = parameter_table({'conv': {'kernel': np.zeros((3, 3, 1, 2))}})
    >>> total
    18
  """
  counts = collections.OrderedDict()
  for key_path, leaf in jax.tree_util.tree_leaves_with_path(params):
    parts = param_path(key_path).split('/')
    module = '/'.join(parts[:min(depth, len(parts) - 1)]) or parts[0]
    counts[module] = counts.get(module, 0) + math.prod(leaf.shape)
  total = sum(counts.values())
  width = max([len(m) for m in counts] + [len('total')])
  lines = [f'{"module":<{width}}  {"params":>14}']
  lines += [f'{m:<{width}}  {n:>14,}' for m, n in counts.items()]
  lines.append(f'{"total":<{width}}  {total:>14,}')
  return '\n'.join(lines), total


class ProgressLine:
  """A console line ``step 120/1000 (12%) | loss 0.53 | 4.1 steps/s | 33 img/s | ETA 3m34s``."""

  def __init__(self, total_steps: int, *, stream: TextIO = sys.stderr):
    self.total_steps = total_steps
    self.stream = stream

  def update(self, step: int, *, steps_per_sec: float, images_per_sec: float,
             scalars: Mapping[str, float]) -> str:
    remaining = max(self.total_steps - step, 0)
    eta = remaining / steps_per_sec if steps_per_sec > 0 else float('inf')
    eta_text = '?' if not math.isfinite(eta) else (
        f'{int(eta // 3600)}h{int(eta % 3600 // 60):02d}m' if eta >= 3600
        else f'{int(eta // 60)}m{int(eta % 60):02d}s')
    fields = ' | '.join(f'{k} {v:.4g}' for k, v in scalars.items())
    line = (f'step {step}/{self.total_steps} ({100 * step / self.total_steps:.0f}%) | {fields} | '
            f'{steps_per_sec:.2f} steps/s | {images_per_sec:.1f} img/s | ETA {eta_text}')
    print(line, file=self.stream, flush=True)
    return line


class MetricsLogger:
  """Writes each logged event to ``metrics.jsonl``, TensorBoard (``tb/<split>``) and the console.

  Each JSON line is ``{"step": ..., "split": ..., "time": ..., <metric>: value, ...}``; train events
  also carry ``steps_per_sec`` and ``images_per_sec``.

  Args:
    workdir: the run directory.
    total_steps: for the progress line's ETA.
  """

  def __init__(self, workdir: str, *, total_steps: int):
    self.active = jax.process_index() == 0
    self.workdir = workdir
    self.progress = ProgressLine(total_steps)
    self._writers: dict[str, tensorboard.SummaryWriter] = {}
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a') if self.active else None

  def _writer(self, split: str) -> tensorboard.SummaryWriter:
    if split not in self._writers:
      self._writers[split] = tensorboard.SummaryWriter(os.path.join(self.workdir, 'tb', split))
    return self._writers[split]

  def log(self, step: int, split: str, metrics: Mapping[str, float], *,
          steps_per_sec: float | None = None, images_per_sec: float | None = None) -> None:
    """Records one event (train scalars, or the metrics of an evaluation)."""
    if not self.active:
      return
    record = {'step': int(step), 'split': split, 'time': time.time()}
    record.update({k: _jsonable(v) for k, v in metrics.items()})
    if steps_per_sec is not None:
      record['steps_per_sec'] = steps_per_sec
      record['images_per_sec'] = images_per_sec
    self._jsonl.write(json.dumps(record) + '\n')
    self._jsonl.flush()
    scalars = {k: float(v) for k, v in metrics.items()}
    if steps_per_sec is not None:
      scalars.update(steps_per_sec=steps_per_sec, images_per_sec=images_per_sec)
    self._writer(split).scalars(step, scalars)
    if split == 'train' and steps_per_sec is not None:
      self.progress.update(step, steps_per_sec=steps_per_sec, images_per_sec=images_per_sec,
                           scalars=metrics)
    else:
      self.info(f'step {step} {split}: ' + ', '.join(f'{k} {float(v):.5g}'
                                                     for k, v in metrics.items()))

  def image(self, step: int, split: str, tag: str, image: Any) -> None:
    """Writes an example image to TensorBoard."""
    if self.active:
      self._writer(split).image(step, tag, image)

  def info(self, message: str) -> None:
    """Prints a message on process 0."""
    if self.active:
      print(message, file=sys.stderr, flush=True)

  def close(self) -> None:
    if self.active:
      self._jsonl.close()
      for writer in self._writers.values():
        writer.close()
