"""``curves.png`` of several run directories at once, drawn by processes on the free cores.

A population (``experiments.sweep --mode=vectorized``) finishes ``K`` runs at the same moment and
draws each one's training curves; matplotlib draws one figure at a time on one core (about a
quarter of a second each, holding the GIL, so threads do not help). :func:`draw_runs` hands all
but the first share of the runs to helper processes (``python -m jaxseg.viz.run_curves DIR...``)
and draws that first share itself meanwhile.

Usage::

  python -m jaxseg.viz.run_curves /tmp/sweep/000_lr=0.001 /tmp/sweep/001_lr=0.01
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from jaxseg.viz import curves

# A helper process starts Python and matplotlib (~0.4 s on the machine measured) before its first
# figure (~0.25 s): worth it from two figures per helper.
_MIN_RUNS_PER_HELPER = 2


def draw_run(workdir: str) -> str | None:
  """Draws ``<workdir>/curves.png`` from ``<workdir>/metrics.jsonl``, titled with its path.

  Args:
    workdir: a run directory.

  Returns:
    None, or a warning saying why it could not be drawn (a missing or unreadable
    ``metrics.jsonl``, no numeric metric): the run's results stand without the picture.

  Example:
    >>> import json, tempfile
    >>> run = tempfile.mkdtemp()
    >>> with open(os.path.join(run, 'metrics.jsonl'), 'w') as f:
    ...   _ = f.write(json.dumps({'step': 1, 'split': 'train', 'loss': 1.0}) + '\\n')
    >>> draw_run(run) is None and os.path.exists(os.path.join(run, 'curves.png'))
    True
  """
  try:
    curves.plot_curves(
      curves.read_metrics(os.path.join(workdir, 'metrics.jsonl')),
      os.path.join(workdir, 'curves.png'),
      title=os.path.abspath(workdir),
    )
  except (OSError, ValueError) as e:
    return f'warning: could not draw {workdir}/curves.png: {e}'
  return None


def draw_runs(workdirs: Sequence[str], *, processes: int | None = None) -> list[str]:
  """Draws every run's ``curves.png`` (:func:`draw_run`), spread over ``processes``.

  The runs are dealt out in turn into shares of at least two per helper; this process draws
  the first share while helper processes draw the others. A helper that fails (it could not start
  or import) has its share drawn here afterwards, so every picture is drawn either way.

  Args:
    workdirs: run directories.
    processes: how many processes draw at most, this one included (default: the cores this
      process may run on).

  Returns:
    The warnings of the runs that could not be drawn, in the order of ``workdirs``.

  Raises:
    ValueError: ``processes`` below 1.
  """
  if processes is None:
    processes = (
      len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    )
  if processes < 1:
    raise ValueError(f'processes: expected >= 1, got {processes}')
  count = max(1, min(processes, len(workdirs) // _MIN_RUNS_PER_HELPER))
  shares = [list(workdirs[i::count]) for i in range(count)]
  helpers = [(share, _start_helper(share)) for share in shares[1:]]
  warnings = {w: draw_run(w) for w in shares[0]}
  for share, helper in helpers:
    lines = helper.communicate()[0].splitlines() if helper else []
    if helper and helper.returncode == 0 and len(lines) == len(share):
      warnings.update((w, line or None) for w, line in zip(share, lines))
    else:  # draw them here: a helper's failure must not cost a picture
      warnings.update((w, draw_run(w)) for w in share)
  return [warnings[w] for w in workdirs if warnings[w]]


def _start_helper(workdirs: Sequence[str]) -> subprocess.Popen | None:
  """``python -m jaxseg.viz.run_curves`` over ``workdirs``, with this jaxseg on its path; None
  where no process could be started (no interpreter to run, no processes left)."""
  package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  path = os.environ.get('PYTHONPATH')
  env = dict(os.environ, PYTHONPATH=package_root + (os.pathsep + path if path else ''))
  try:
    return subprocess.Popen(
      [sys.executable, '-m', 'jaxseg.viz.run_curves', *workdirs],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
  except OSError:
    return None


def main(argv: Sequence[str]) -> int:
  """Draws each directory's curves; prints one line per directory (its warning, or empty)."""
  for workdir in argv:
    print(' '.join((draw_run(workdir) or '').split()), flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
