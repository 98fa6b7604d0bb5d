"""Orbax checkpoints of the train state and the input pipeline's position.

Each checkpoint is a step directory ``<workdir>/checkpoints/<step>/`` with two items:
``state`` (``ocp.args.StandardSave`` of the :class:`~jaxseg.train.state.TrainState`) and ``data``
(one JSON file per process with the data iterator's ``get_state()``). Orbax writes a step into a
temporary directory and renames it when complete, so a run killed mid-save leaves the previous
checkpoint untouched; leftover temporary directories are ignored and cleaned up on restart.

Retention: the last ``keep`` checkpoints plus the best one by ``best_metric`` (checkpoints saved
after an evaluation carry its metrics).

Integrity: after a step is complete, process 0 writes ``<step>/manifest.json`` with the size and
SHA-256 of every file of the step (the state's arrays and metadata and the data-iterator JSON).
:meth:`Checkpointer.restore_latest` verifies the newest checkpoint against it before restoring;
one that fails verification or restore is named with the reason, moved aside to
``<workdir>/checkpoints_corrupt/`` (never deleted) and the next older one is tried.
"""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from typing import Any, Callable, Mapping

from etils import epath
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers


class _DropMissingMetricsWarning(logging.Filter):
  """Checkpoints between evaluations legitimately have no metrics; orbax warns about each."""

  def filter(self, record: logging.LogRecord) -> bool:
    return 'did not provide metrics' not in record.getMessage()


logging.getLogger('absl').addFilter(_DropMissingMetricsWarning())


class DataIteratorHandler(ocp.CheckpointHandler):
  """Saves and restores any iterator with ``get_state()``/``set_state()`` as per-process JSON.

  ``get_state()`` may return a JSON-serialisable dict (``grain`` ``DatasetIterator``) or bytes
  holding UTF-8 JSON (``grain`` ``DataLoaderIterator``); the kind is recorded so ``set_state`` gets
  back what it gave.
  """

  def _filename(self, directory: epath.Path) -> epath.Path:
    return directory / f'process_{jax.process_index()}-of-{jax.process_count()}.json'

  def save(self, directory: epath.Path, args: 'DataIteratorSave') -> None:
    state = args.iterator.get_state()
    if isinstance(state, bytes):
      record = {'kind': 'bytes', 'state': state.decode('utf-8')}
    else:
      record = {'kind': 'json', 'state': state}
    self._filename(directory).write_text(json.dumps(record))

  def restore(self, directory: epath.Path, args: 'DataIteratorRestore') -> Any:
    filename = self._filename(directory)
    if not filename.exists():
      raise FileNotFoundError(
        f'no data-iterator state for this process at {filename} (was the '
        'checkpoint written with a different number of processes?)'
      )
    record = json.loads(filename.read_text())
    state = record['state']
    args.iterator.set_state(state.encode('utf-8') if record['kind'] == 'bytes' else state)
    return args.iterator

  def metadata(self, directory: epath.Path) -> None:
    del directory
    return None


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataIteratorSave(ocp.args.CheckpointArgs):
  iterator: Any


@ocp.args.register_with_handler(DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataIteratorRestore(ocp.args.CheckpointArgs):
  iterator: Any


MANIFEST = 'manifest.json'
CORRUPT_DIR = 'checkpoints_corrupt'
_CHUNK = 1 << 20


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK), b''):
      digest.update(chunk)
  return digest.hexdigest()


def _step_files(step_dir: str) -> list[str]:
  """Every file under ``step_dir`` (relative, sorted), the manifest itself excepted."""
  found = []
  for root, _, files in os.walk(step_dir):
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), step_dir)
      if rel != MANIFEST and not rel.startswith(MANIFEST + '.'):
        found.append(rel)
  return sorted(found)


def write_manifest(step_dir: str, step: int) -> str:
  """Writes ``step_dir/manifest.json``: size and SHA-256 of every file of the checkpoint.

  Written to a temporary name and renamed, so a manifest is either complete or absent.

  Returns:
    The manifest's path.
  """
  files = {
    rel: {
      'size': os.path.getsize(os.path.join(step_dir, rel)),
      'sha256': _sha256(os.path.join(step_dir, rel)),
    }
    for rel in _step_files(step_dir)
  }
  path = os.path.join(step_dir, MANIFEST)
  tmp = f'{path}.tmp-{os.getpid()}'
  with open(tmp, 'w') as f:
    json.dump({'format': 1, 'step': int(step), 'files': files}, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def verify_step_dir(step_dir: str, step: int) -> str | None:
  """Checks a step directory against its manifest.

  Returns:
    ``None`` when every file listed is present with its size and checksum, otherwise the first
    reason it is not (a missing, truncated or changed file, or an unreadable manifest).
  """
  path = os.path.join(step_dir, MANIFEST)
  if not os.path.exists(path):
    return f'no {MANIFEST} (written after the checkpoint completes)'
  try:
    with open(path) as f:
      manifest = json.load(f)
    files = manifest['files']
    if manifest.get('step') != step or not isinstance(files, dict) or not files:
      raise ValueError(f'step {manifest.get("step")!r}, {len(files)} files')
  except (OSError, ValueError, KeyError, TypeError) as e:
    return f'{MANIFEST} is unreadable ({type(e).__name__}: {e})'
  for rel, expected in sorted(files.items()):
    file_path = os.path.join(step_dir, rel)
    if not os.path.isfile(file_path):
      return f'{rel} is missing'
    size = os.path.getsize(file_path)
    if size != expected['size']:
      return f'{rel} has {size} bytes, the manifest says {expected["size"]}'
    if _sha256(file_path) != expected['sha256']:
      return f'{rel} does not match its SHA-256 checksum (the data changed after it was written)'
  return None


def _sync(name: str) -> None:
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top

    multihost_utils.sync_global_devices(name)


class Checkpointer:
  """A ``CheckpointManager`` for train state + data iterator with last-K-and-best retention.

  Args:
    directory: where step directories go (created if needed).
    keep: how many of the most recent checkpoints to keep (>= 1).
    best_metric: name of the metric that ranks checkpoints saved with metrics.
    best_mode: ``'max'`` or ``'min'``.

  Example:
    >>> import os, tempfile
    >>> class Position:  # any iterator with grain's get_state/set_state
    ...   position = 0
    ...   def get_state(self): return {'position': self.position}
    ...   def set_state(self, state): self.position = state['position']
    >>> workdir = tempfile.mkdtemp()
    >>> with Checkpointer(os.path.join(workdir, 'checkpoints'), keep=3, best_metric='accuracy',
    ...                   best_mode='max') as ckpt:
    ...   it = Position(); it.position = 7
    ...   ckpt.save(100, {'w': jnp.arange(3.0)}, it)
    ...   step, state = ckpt.restore_latest({'w': jnp.zeros(3)}, Position())
    >>> step, state['w'].tolist()
    (100, [0.0, 1.0, 2.0])
  """

  def __init__(self, directory: str, *, keep: int, best_metric: str, best_mode: str):
    if keep < 1:
      raise ValueError(f'keep_checkpoints must be >= 1, got {keep}')
    if best_mode not in ('max', 'min'):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    self.best_metric = best_metric
    self.best_mode = best_mode
    policy = checkpoint_managers.AnyPreservationPolicy(
      [
        checkpoint_managers.LatestN(n=keep),
        checkpoint_managers.BestN(
          get_metric_fn=lambda metrics: metrics[best_metric],
          reverse=best_mode == 'min',
          n=1,
          keep_checkpoints_without_metrics=False,
        ),
      ]
    )
    options = ocp.CheckpointManagerOptions(
      preservation_policy=policy,
      # best_fn also makes orbax store each checkpoint's metrics next to it.
      best_fn=lambda metrics: metrics[best_metric],
      best_mode=best_mode,
      cleanup_tmp_directories=True,
      # Synchronous: the state's buffers are donated to the next step, so they must be on the
      # host before save() returns.
      enable_async_checkpointing=False,
      create=True,
    )
    self._manager = ocp.CheckpointManager(
      os.path.abspath(directory), options=options, item_names=('state', 'data')
    )
    # Steps whose files this process wrote or verified: what the NaN guard may point to.
    self._verified: set[int] = set()
    self._closed = False

  @property
  def directory(self) -> str:
    return str(self._manager.directory)

  def latest_step(self) -> int | None:
    """Returns the newest complete checkpoint's step, or None."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    """Returns the steps of all complete checkpoints, ascending."""
    return sorted(self._manager.all_steps())

  def best(self) -> tuple[int | None, float | None]:
    """Returns ``(step, value)`` of the best kept checkpoint saved with metrics, or Nones."""
    best_step, best_value = None, None
    for step in self.all_steps():
      metrics = self._manager.metrics(step)
      if not metrics or self.best_metric not in metrics:
        continue
      value = float(metrics[self.best_metric])
      if best_value is None or (
        value > best_value if self.best_mode == 'max' else value < best_value
      ):
        best_step, best_value = step, value
    return best_step, best_value

  def save(
    self, step: int, state: Any, data_iterator: Any, metrics: Mapping[str, float] | None = None
  ) -> None:
    """Saves ``state`` and ``data_iterator``'s position as checkpoint ``step`` (blocking).

    Args:
      step: the train step.
      state: the train state (sharded arrays are written by every process, each its shards).
      data_iterator: the training iterator (``get_state()``).
      metrics: evaluation metrics for best-checkpoint tracking; must contain ``best_metric``.
    """
    if metrics is not None:
      if self.best_metric not in metrics:
        raise ValueError(
          f'best_metric {self.best_metric!r} is not among the evaluation metrics {sorted(metrics)}'
        )
      metrics = {k: float(v) for k, v in metrics.items()}
    if step in self._manager.all_steps():
      return
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=DataIteratorSave(data_iterator)
      ),
      metrics=metrics,
      force=True,
    )
    self._manager.wait_until_finished()
    _sync(f'jaxseg_checkpoint_saved_{step}')
    if jax.process_index() == 0 and os.path.isdir(self.step_dir(step)):
      write_manifest(self.step_dir(step), step)
    _sync(f'jaxseg_checkpoint_manifest_{step}')
    self._verified.add(step)

  def restore(self, step: int, abstract_state: Any, data_iterator: Any) -> Any:
    """Restores checkpoint ``step`` into the shapes/shardings of ``abstract_state``.

    Args:
      step: which checkpoint.
      abstract_state: pytree of ``jax.ShapeDtypeStruct`` with ``sharding`` set.
      data_iterator: its position is set in place from the checkpoint.

    Returns:
      The restored state.
    """
    restored = self._manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=DataIteratorRestore(data_iterator)
      ),
    )
    return restored['state']

  def step_dir(self, step: int) -> str:
    """The directory of checkpoint ``step``."""
    return os.path.join(self.directory, str(step))

  def verify(self, step: int) -> str | None:
    """``None`` if checkpoint ``step`` matches its manifest, else why not (see
    :func:`verify_step_dir`)."""
    return verify_step_dir(self.step_dir(step), step)

  def last_verified_step(self) -> int | None:
    """The newest existing checkpoint this run wrote or verified, or None."""
    existing = set(self.all_steps()) & self._verified
    return max(existing) if existing else None

  def describe_last_good(self) -> str:
    """One sentence naming the checkpoint a stopped run can resume from (for error messages)."""
    step = self.last_verified_step()
    if step is None:
      return (
        f'No verified checkpoint exists yet in {self.directory}: none was saved before '
        'this point, so a new run starts from scratch.'
      )
    return (
      f'The last good checkpoint is step {step} (verified) in {self.directory}; a '
      'restart resumes from it.'
    )

  def quarantine(self, step: int, reason: str) -> str:
    """Moves checkpoint ``step`` aside (never deletes it) with a note of ``reason``.

    Returns:
      Where it now is: ``<workdir>/checkpoints_corrupt/<step>-<time>``.
    """
    source = self.step_dir(step)
    target_root = os.path.join(os.path.dirname(self.directory.rstrip('/')), CORRUPT_DIR)
    target = os.path.join(target_root, f'{step}-{time.strftime("%Y%m%d-%H%M%S")}')
    _sync(f'jaxseg_quarantine_begin_{step}')
    if jax.process_index() == 0:
      os.makedirs(target_root, exist_ok=True)
      suffix = 0
      while os.path.exists(target + (f'.{suffix}' if suffix else '')):
        suffix += 1
      target += f'.{suffix}' if suffix else ''
      shutil.move(source, target)
      with open(os.path.join(target, 'WHY_MOVED_ASIDE.txt'), 'w') as f:
        f.write(f'checkpoint step {step} failed verification or restore: {reason}\n')
    _sync(f'jaxseg_quarantine_end_{step}')
    self._verified.discard(step)
    self._manager.reload()
    return target

  def restore_latest(
    self, abstract_state: Any, data_iterator: Any, note: Callable[[str], None] = print
  ) -> tuple[int | None, Any]:
    """Restores the newest checkpoint that verifies and restores, falling back to older ones.

    Each checkpoint that fails (checksum mismatch, missing or truncated file, unreadable JSON, or
    an error while restoring) is named with the reason through ``note``, moved aside with
    :meth:`quarantine` and the next older one is tried. A checkpoint without a manifest
    (written by an older jaxseg, or killed between completing and writing its manifest) is
    restored unverified, with a note.

    Args:
      abstract_state: as for :meth:`restore`.
      data_iterator: its position is set in place from the checkpoint restored.
      note: receives one line per fall-back or unverified restore.

    Returns:
      ``(step, state)``, or ``(None, None)`` when no checkpoint is usable.
    """
    for step in sorted(self.all_steps(), reverse=True):
      reason = self.verify(step)
      unverified = reason is not None and reason.startswith(f'no {MANIFEST}')
      if reason is None or unverified:
        try:
          state = self.restore(step, abstract_state, data_iterator)
        except Exception as e:  # pylint: disable=broad-except
          # Orbax/tensorstore raise many types for damaged files; every one means "fall back".
          reason = f'restore failed: {type(e).__name__}: {str(e)[:300]}'
        else:
          if unverified:
            note(f'checkpoint step {step} has no {MANIFEST}; restored it unverified.')
          self._verified.add(step)
          return step, state
      older = [s for s in self.all_steps() if s < step]
      target = self.quarantine(step, reason)
      note(
        f'checkpoint step {step} is damaged ({reason}); moved it aside to {target} and '
        + (
          f'falling back to step {max(older)}.'
          if older
          else 'no older checkpoint is left: starting from scratch.'
        )
      )
    return None, None

  def restore_state_tree(self, step: int) -> Any:
    """Returns checkpoint ``step``'s train state as a plain nested dict of arrays (no target).

    For inspection and for loading weights into other code; the data iterator is not touched.
    """
    restored = self._manager.restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
    )
    return restored['state']

  def close(self) -> None:
    """Closes the manager (its thread pools); safe to call more than once."""
    if not self._closed:
      self._closed = True
      self._manager.close()

  def __enter__(self) -> 'Checkpointer':
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()
