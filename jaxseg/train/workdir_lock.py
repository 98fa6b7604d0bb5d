"""One training run per workdir: an exclusive lock per process index.

Two runs writing into one workdir corrupt each other (Orbax crashes, duplicated ``metrics.jsonl``
rows, two TensorBoard files per split). The processes of one multi-host run share the workdir
legitimately, so each takes its own lock, ``<workdir>/.lock.process_<index>``. The lock is an
``fcntl.flock`` on that file, which the kernel releases when its holder exits however it exits;
the file also records the holder's PID and host, so a refusal can name them and a lock left by a
dead process is taken over with a note.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from typing import Callable


class WorkdirLockedError(RuntimeError):
  """Another live process holds the lock of this workdir and process index."""


class WorkdirLock:
  """An exclusive, non-blocking lock of ``workdir`` for one process index.

  Args:
    workdir: the run directory (must exist).
    process_index: this process's index in a multi-host run (0 for one process).
    note: receives one line when a stale lock of a dead process is taken over.

  Raises:
    WorkdirLockedError: on :meth:`acquire`, naming the PID (and host) holding the lock.

  Example:
    >>> import tempfile
    >>> with WorkdirLock(tempfile.mkdtemp()) as lock:
    ...   lock.holder()['pid'] == os.getpid()
    True
  """

  def __init__(self, workdir: str, process_index: int = 0, note: Callable[[str], None] = print):
    self.path = os.path.join(workdir, f'.lock.process_{int(process_index)}')
    self._note = note
    self._fd: int | None = None

  def holder(self) -> dict | None:
    """The PID, host and start time written by the last holder, or None."""
    try:
      with open(self.path) as f:
        return json.loads(f.read() or 'null')
    except (OSError, ValueError):
      return None

  def acquire(self) -> 'WorkdirLock':
    """Takes the lock or raises :class:`WorkdirLockedError` naming its holder."""
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      os.close(fd)
      holder = self.holder() or {}
      raise WorkdirLockedError(
        f'workdir {os.path.dirname(self.path)} is in use by another run: process '
        f'PID {holder.get("pid", "?")} on host {holder.get("host", "?")} holds {self.path} '
        f'(since {holder.get("started", "?")}). Stop that run first, or choose another '
        '--workdir.'
      ) from None
    previous = self.holder()
    if previous and previous.get('pid') is not None:
      # The kernel dropped the flock when that process died; its record is all that is left.
      self._note(
        f'took over the stale workdir lock {self.path} of PID {previous["pid"]} on '
        f'host {previous.get("host", "?")} (that process is gone).'
      )
    record = {
      'pid': os.getpid(),
      'host': socket.gethostname(),
      'started': time.strftime('%Y-%m-%d %H:%M:%S'),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    os.fsync(fd)
    self._fd = fd
    return self

  def release(self) -> None:
    """Clears the record and releases the lock (idempotent)."""
    if self._fd is None:
      return
    try:
      os.ftruncate(self._fd, 0)  # a clean exit leaves nothing to take over
      fcntl.flock(self._fd, fcntl.LOCK_UN)
    finally:
      os.close(self._fd)
      self._fd = None

  def __enter__(self) -> 'WorkdirLock':
    return self.acquire()

  def __exit__(self, *exc_info) -> None:
    self.release()
