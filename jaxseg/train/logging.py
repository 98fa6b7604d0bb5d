"""Run logging: ``metrics.jsonl``, TensorBoard events, a console progress bar, the resolved config
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
    module = '/'.join(parts[: min(depth, len(parts) - 1)]) or parts[0]
    counts[module] = counts.get(module, 0) + math.prod(leaf.shape)
  total = sum(counts.values())
  width = max([len(m) for m in counts] + [len('total')])
  lines = [f'{"module":<{width}}  {"params":>14}']
  lines += [f'{m:<{width}}  {n:>14,}' for m, n in counts.items()]
  lines.append(f'{"total":<{width}}  {total:>14,}')
  return '\n'.join(lines), total


def format_eta(seconds: float) -> str:
  """``'3m34s'``, ``'2h05m'``, or ``'?'`` when the rate is unknown (infinite or NaN seconds)."""
  if not math.isfinite(seconds):
    return '?'
  seconds = max(seconds, 0.0)
  if seconds >= 3600:
    return f'{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m'
  return f'{int(seconds // 60)}m{int(seconds % 60):02d}s'


def format_progress(
  step: int,
  total_steps: int,
  *,
  steps_per_sec: float,
  images_per_sec: float,
  scalars: Mapping[str, float],
  bar_width: int = 0,
) -> str:
  """The console progress text: counters, metrics, throughput and the remaining time.

  ``ETA = (total_steps - step) / steps_per_sec``. With ``bar_width > 0`` the text starts with a
  bar of that many cells, ``round(bar_width * step / total_steps)`` of them filled.

  Args:
    step: steps done.
    total_steps: steps of the run (> 0).
    steps_per_sec: the recent rate (0 or less: ETA unknown).
    images_per_sec: the recent throughput.
    scalars: metrics to show, formatted with 4 significant digits.
    bar_width: cells of the bar; 0 for none.

  Returns:
    One line without a newline.

  Example:
    >>> format_progress(100, 1000, steps_per_sec=2.0, images_per_sec=64.0,
    ...                 scalars={'loss': 0.5}, bar_width=10)
    '[#.........] step 100/1000 (10%) | loss 0.5 | 2.00 steps/s | 64.0 img/s | ETA 7m30s'
  """
  remaining = max(total_steps - step, 0)
  eta = remaining / steps_per_sec if steps_per_sec > 0 else float('inf')
  parts = [f'step {step}/{total_steps} ({100 * step / total_steps:.0f}%)']
  if scalars:
    parts.append(' | '.join(f'{k} {float(v):.4g}' for k, v in scalars.items()))
  parts += [f'{steps_per_sec:.2f} steps/s', f'{images_per_sec:.1f} img/s', f'ETA {format_eta(eta)}']
  line = ' | '.join(parts)
  if bar_width > 0:
    filled = min(bar_width, max(0, round(bar_width * step / total_steps)))
    line = f'[{"#" * filled}{"." * (bar_width - filled)}] {line}'
  return line


class ProgressLine:
  """Console progress: a bar redrawn in place on a terminal, one line per update otherwise.

  On a TTY each update rewrites the current line (``\r``, then clear to the end of the line) as
  ``[####......] step 120/1000 (12%) | loss 0.53 | 4.1 steps/s | 33 img/s | ETA 3m34s``; other
  messages first end the bar's line (:meth:`break_line`). Redirected to a file or a pipe (a
  cluster log), every update is its own line, without the bar.

  Args:
    total_steps: for the percentage, the bar and the ETA.
    stream: where to write (``sys.stderr``, beside the other log messages).
    redraw: redraw in place; ``None`` (default): when ``stream`` is a TTY.
    bar_width: cells of the bar when redrawing.
  """

  def __init__(
    self,
    total_steps: int,
    *,
    stream: TextIO | None = None,
    redraw: bool | None = None,
    bar_width: int = 24,
  ):
    self.total_steps = total_steps
    self.stream = stream if stream is not None else sys.stderr
    if redraw is None:
      isatty = getattr(self.stream, 'isatty', None)
      redraw = bool(isatty and isatty())
    self.redraw = redraw
    self.bar_width = bar_width
    self._line_open = False

  def update(
    self, step: int, *, steps_per_sec: float, images_per_sec: float, scalars: Mapping[str, float]
  ) -> str:
    """Shows the progress at ``step`` and returns the text written (without control codes)."""
    line = format_progress(
      step,
      self.total_steps,
      steps_per_sec=steps_per_sec,
      images_per_sec=images_per_sec,
      scalars=scalars,
      bar_width=self.bar_width if self.redraw else 0,
    )
    if self.redraw:
      self.stream.write('\r' + line + '\x1b[K')  # \x1b[K clears what a longer line left
      self._line_open = step < self.total_steps
      if not self._line_open:
        self.stream.write('\n')
      self.stream.flush()
    else:
      print(line, file=self.stream, flush=True)
    return line

  def break_line(self) -> None:
    """Ends a bar that is being redrawn, so the next message starts on its own line."""
    if self._line_open:
      self.stream.write('\n')
      self.stream.flush()
      self._line_open = False


class MetricsLogger:
  """Writes each logged event to ``metrics.jsonl``, TensorBoard (``tb/<split>``) and the console.

  Each JSON line is ``{"step": ..., "split": ..., "time": ..., <metric>: value, ...}``; train events
  also carry ``steps_per_sec`` and ``images_per_sec``.

  Args:
    workdir: the run directory.
    total_steps: for the progress line's ETA.
    console: print progress and messages (False: files only, e.g. one of a population's members,
      whose progress the population prints).
  """

  def __init__(self, workdir: str, *, total_steps: int, console: bool = True):
    self.active = jax.process_index() == 0
    self.console = console
    self.workdir = workdir
    self.progress = ProgressLine(total_steps)
    self._writers: dict[str, tensorboard.SummaryWriter] = {}
    self._jsonl = open(os.path.join(workdir, 'metrics.jsonl'), 'a') if self.active else None

  def _writer(self, split: str) -> tensorboard.SummaryWriter:
    if split not in self._writers:
      self._writers[split] = tensorboard.SummaryWriter(os.path.join(self.workdir, 'tb', split))
    return self._writers[split]

  def log(
    self,
    step: int,
    split: str,
    metrics: Mapping[str, float],
    *,
    steps_per_sec: float | None = None,
    images_per_sec: float | None = None,
  ) -> None:
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
    if not self.console:
      return
    if split == 'train' and steps_per_sec is not None:
      self.progress.update(
        step, steps_per_sec=steps_per_sec, images_per_sec=images_per_sec, scalars=metrics
      )
    else:
      self.info(
        f'step {step} {split}: ' + ', '.join(f'{k} {float(v):.5g}' for k, v in metrics.items())
      )

  def image(self, step: int, split: str, tag: str, image: Any) -> None:
    """Writes an example image to TensorBoard."""
    if self.active:
      self._writer(split).image(step, tag, image)

  def info(self, message: str) -> None:
    """Prints a message on process 0 (below the progress bar, if one is being redrawn)."""
    if self.active and self.console:
      self.progress.break_line()
      print(message, file=sys.stderr, flush=True)

  def close(self) -> None:
    if self.active:
      self.progress.break_line()
      self._jsonl.close()
      for writer in self._writers.values():
        writer.close()
