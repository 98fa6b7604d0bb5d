"""What every benchmark shares: a best-of-N timer and where the reference samples live.

The benchmarks run as scripts (``python benchmarks/classic.py``), so this folder is on
``sys.path`` and they import this module as ``timing``.
"""

import os
import time
from typing import Any, Callable

import jax

REFERENCE_DATA = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))), '..', 'shared', 'reference-data'
)


def reference_path(*parts: str) -> str:
  """Returns the path of ``parts`` under ``../shared/reference-data`` (it may not exist)."""
  return os.path.join(REFERENCE_DATA, *parts)


def best_ms(
  fn: Callable[[], Any], repeats: int, *, clock: Callable[[], float] = time.perf_counter
) -> float:
  """Returns the fastest of ``repeats`` calls of ``fn``, in milliseconds on ``clock``.

  Each call is waited for with ``jax.block_until_ready`` (a no-op on NumPy results), so an
  asynchronous dispatch is not timed as done. ``clock=time.process_time`` measures the
  process's CPU time, XLA's threads included: on a machine shared by many processes wall time
  mostly measures the scheduler, CPU time the work.

  Args:
    fn: the call to time, without arguments.
    repeats: how many times to call it (>= 1).
    clock: a monotonic clock in seconds, ``time.perf_counter`` (wall) or ``time.process_time``.

  Returns:
    The smallest time of one call, in milliseconds.
  """
  if repeats < 1:
    raise ValueError(f'repeats must be >= 1, got {repeats}')
  best = float('inf')
  for _ in range(repeats):
    start = clock()
    jax.block_until_ready(fn())
    best = min(best, clock() - start)
  return best * 1e3
