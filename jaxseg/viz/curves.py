"""Training curves from a run's ``metrics.jsonl``: loss, learning rate and every eval metric."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

# Keys of a metrics.jsonl record that are bookkeeping, not curves.
_NOT_CURVES = ('step', 'split', 'time', 'steps_per_sec', 'images_per_sec')


def read_metrics(path: str) -> list[dict[str, Any]]:
  """Reads ``metrics.jsonl`` (one JSON object per line), skipping a torn last line.

  Args:
    path: a run's ``metrics.jsonl``.

  Returns:
    The records in file order, each with ``step``, ``split`` and its scalars.

  Raises:
    FileNotFoundError: naming ``path``.
    ValueError: naming the line that is not JSON (other than a torn last line, which a run
      killed mid-write can leave).
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path} does not exist: is it a run directory with metrics.jsonl?')
  with open(path) as f:
    lines = [line for line in f.read().splitlines() if line.strip()]
  records = []
  for number, line in enumerate(lines, start=1):
    try:
      records.append(json.loads(line))
    except json.JSONDecodeError as e:
      if number == len(lines):
        break  # a torn last line
      raise ValueError(f'{path} line {number} is not JSON: {e}') from e
  return records


def curves(
  records: Iterable[Mapping[str, Any]],
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
  """Groups records into ``{split: {metric: (steps, values)}}``, sorted by step.

  A resumed run logs some steps twice (from the last checkpoint on): the last record of a step
  wins. Non-numeric and non-finite values are dropped from the curve (a NaN breaks a line plot).

  Example:
    >>> curves([{'step': 1, 'split': 'train', 'loss': 2.0}, {'step': 2, 'split': 'train',
    ...          'loss': 1.0}])['train']['loss'][1].tolist()
    [2.0, 1.0]
  """
  by_step: dict[str, dict[str, dict[int, float]]] = {}
  for record in records:
    split, step = record.get('split', 'train'), record.get('step')
    if not isinstance(step, int):
      continue
    for key, value in record.items():
      if key in _NOT_CURVES or isinstance(value, bool) or not isinstance(value, (int, float)):
        continue
      if math.isfinite(value):
        by_step.setdefault(split, {}).setdefault(key, {})[step] = float(value)
  return {
    split: {
      key: (np.array(sorted(points)), np.array([points[s] for s in sorted(points)]))
      for key, points in metrics.items()
    }
    for split, metrics in by_step.items()
  }


def plot_curves(records: Sequence[Mapping[str, Any]], path: str, *, title: str = '') -> str:
  """Draws one panel per metric (training loss, learning rate, each eval metric) into a PNG.

  Panels share the step axis; a metric logged by several splits (``loss`` in training and
  evaluation) is drawn once per split in the same panel.

  Args:
    records: ``metrics.jsonl`` records (:func:`read_metrics`).
    path: the PNG to write (its folder is created).
    title: a title over the figure (e.g. the workdir).

  Returns:
    ``path``.

  Example:
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'curves.png')
    >>> plot_curves([{'step': s, 'split': 'train', 'loss': 1 / s} for s in (1, 2, 3)], path)[-10:]
    'curves.png'
  """
  figure = _draw(records, title)
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top (after Agg)

  folder = os.path.dirname(path)
  if folder:
    os.makedirs(folder, exist_ok=True)
  figure.savefig(path, dpi=100)
  plt.close(figure)
  return path


def _draw(records: Sequence[Mapping[str, Any]], title: str):
  """The figure of :func:`plot_curves` (open: the caller saves and closes it)."""
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use('Agg')  # files only: no display needed
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top

  grouped = curves(records)
  if not grouped:
    raise ValueError('records hold no numeric metric with an int step: nothing to plot.')
  # Order: training loss, learning rate, then the rest alphabetically.
  names = sorted(
    {name for metrics in grouped.values() for name in metrics},
    key=lambda n: (n != 'loss', n not in ('learning_rate', 'lr'), n),
  )
  columns = min(3, len(names))
  rows = math.ceil(len(names) / columns)
  figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
  for axis, name in zip(axes.flat, names):
    for split, metrics in sorted(grouped.items()):
      if name in metrics:
        steps, values = metrics[name]
        axis.plot(steps, values, marker='o' if len(steps) < 30 else None, markersize=3, label=split)
    # y=1 is where the title goes anyway (no ticks on top); given, matplotlib skips its search
    # for overlapping tick labels at every draw (a twentieth of the plot, same pixels).
    axis.set_title(name, fontsize=10, y=1.0)
    axis.set_xlabel('step', fontsize=8)
    axis.grid(alpha=0.3)
    axis.tick_params(labelsize=8)
    if len([s for s in grouped if name in grouped[s]]) > 1:
      axis.legend(fontsize=8)
  for axis in list(axes.flat)[len(names) :]:
    axis.axis('off')
  _lay_out(figure, rows, columns, title)
  return figure


# Margins in inches around and between the panels, fixed because the fonts are (8-10 pt):
# room for the tick labels and 'step' below, the panel titles above, the y tick labels left.
# ``figure.tight_layout()`` found equivalent ones by drawing the figure an extra time, a third of
# the plot's cost (0.36 -> 0.27 s per curves.png, which every run and every sweep trial draws).
# A figure title sits at a fixed distance from the top too (matplotlib's default, 2% of the
# height, reaches the panel titles of tall figures), with _TITLE more room above the panels.
_LEFT, _RIGHT, _BOTTOM, _TOP = 0.62, 0.15, 0.45, 0.3
_TITLE, _TITLE_FROM_TOP = 0.3, 0.08
_BETWEEN_COLUMNS, _BETWEEN_ROWS = 0.7, 0.75


def _lay_out(figure, rows: int, columns: int, title: str) -> None:
  """Places the figure's title (if any) and its ``rows x columns`` panels with the fixed
  margins above (inches)."""
  width, height = figure.get_size_inches()
  if title:
    figure.suptitle(title, fontsize=10, y=1 - _TITLE_FROM_TOP / height, va='top')
  top = _TOP + (_TITLE if title else 0.0)
  panel_width = (width - _LEFT - _RIGHT - (columns - 1) * _BETWEEN_COLUMNS) / columns
  panel_height = (height - _BOTTOM - top - (rows - 1) * _BETWEEN_ROWS) / rows
  figure.subplots_adjust(
    left=_LEFT / width,
    right=1 - _RIGHT / width,
    bottom=_BOTTOM / height,
    top=1 - top / height,
    wspace=_BETWEEN_COLUMNS / panel_width,
    hspace=_BETWEEN_ROWS / panel_height,
  )
