"""Transparent huge pages for the binaries' heap: glibc's ``glibc.malloc.hugetlb=1``, on by default.

XLA:CPU allocates a train step's temporaries afresh at every step, and glibc gives blocks of more
than 32 MiB (and its thread arenas' heaps) back to the kernel when they are freed, so the next
step faults the same memory in again, 4 KiB at a time. Measured (issue 16, 2-core AMD EPYC,
THP in ``madvise`` mode, jaxseg's train step alone in a fresh process, float32, two pairs of
processes each): ResNet-50 at batch 8 took 298k page faults and 0.46 s of system time a step,
1075 ms in all; with the tunable 2k faults, 0.07-0.10 s and 806-838 ms. VGG16 at batch 4:
424k faults, 0.64-0.67 s, 1758-1778 ms; then 1.2-1.5k, 0.09-0.10 s, 1408-1435 ms. The tunable
makes malloc ``madvise`` its memory for transparent huge pages, so one fault maps 2 MiB.

glibc reads its tunables when a process starts, so :func:`restart_with_huge_pages` re-executes
the binary once (same process id, same command line) with ``GLIBC_TUNABLES`` extended; a binary
calls it first, before its heavy imports. Nothing happens where it would not help:
:func:`environment_with_huge_pages` says when.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

ENV_VAR = 'JAXSEG_HUGE_PAGES'
TUNABLE = 'glibc.malloc.hugetlb'
THP_MODE_FILE = '/sys/kernel/mm/transparent_hugepage/enabled'
_OFF = ('0', 'off', 'false', 'no')
_FIRST_GLIBC_WITH_TUNABLE = (2, 35)


def environment_with_huge_pages(
  environ: Mapping[str, str],
  *,
  thp_mode: str | None = None,
  glibc_version: str | None = None,
) -> dict[str, str] | None:
  """The environment to restart a binary with, or None where a restart would not help.

  None when ``$JAXSEG_HUGE_PAGES`` is ``0``/``off``/``false``/``no``; when ``GLIBC_TUNABLES``
  already names ``glibc.malloc.hugetlb`` (the user's choice, or a restarted binary); when the C
  library is not glibc 2.35 or later (older ones ignore the tunable); or when the kernel's
  transparent huge pages are not in ``madvise`` mode (``always`` gives every process huge
  pages already, ``never`` forbids them).

  Args:
    environ: the current environment, e.g. ``os.environ``.
    thp_mode: the contents of ``/sys/kernel/mm/transparent_hugepage/enabled`` (read when
      None), e.g. ``'always [madvise] never'``; ``''`` where it does not exist.
    glibc_version: ``os.confstr('CS_GNU_LIBC_VERSION')`` (read when None), e.g.
      ``'glibc 2.36'``; ``''`` for another C library.

  Returns:
    A copy of ``environ`` with ``glibc.malloc.hugetlb=1`` appended to ``GLIBC_TUNABLES``, or
    None.

  Example:
    >>> env = environment_with_huge_pages(
    ...     {'HOME': '/root'}, thp_mode='always [madvise] never', glibc_version='glibc 2.36')
    >>> env['GLIBC_TUNABLES']
    'glibc.malloc.hugetlb=1'
    >>> environment_with_huge_pages(env, thp_mode='always [madvise] never',
    ...                             glibc_version='glibc 2.36') is None  # already restarted
    True
  """
  if environ.get(ENV_VAR, '').strip().lower() in _OFF:
    return None
  tunables = environ.get('GLIBC_TUNABLES', '')
  if TUNABLE in tunables:
    return None
  if glibc_version is None:
    glibc_version = _glibc_version()
  if not _glibc_has_tunable(glibc_version):
    return None
  if thp_mode is None:
    thp_mode = _read_thp_mode()
  if '[madvise]' not in thp_mode:
    return None
  env = dict(environ)
  env['GLIBC_TUNABLES'] = ':'.join(filter(None, [tunables, f'{TUNABLE}=1']))
  return env


def restart_with_huge_pages() -> None:
  """Re-executes this process with malloc on transparent huge pages, where that helps.

  Call it first in a binary's ``__main__``, before importing JAX: the restart replaces the
  process (``os.execve``: same id, same ``sys.orig_argv``), so anything done before it is done
  again. Returns without restarting where :func:`environment_with_huge_pages` says None, so
  the restarted binary goes on.
  """
  env = environment_with_huge_pages(os.environ)
  if env is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, sys.orig_argv, env)


def _glibc_version() -> str:
  try:
    return os.confstr('CS_GNU_LIBC_VERSION') or ''
  except (AttributeError, ValueError, OSError):  # not a glibc system
    return ''


def _glibc_has_tunable(version: str) -> bool:
  name, _, number = version.partition(' ')
  if name != 'glibc':
    return False
  try:
    major, minor = (int(part) for part in number.split('.')[:2])
  except ValueError:
    return False
  return (major, minor) >= _FIRST_GLIBC_WITH_TUNABLE


def _read_thp_mode() -> str:
  try:
    with open(THP_MODE_FILE) as f:
      return f.read()
  except OSError:
    return ''
