"""Orbax checkpoints of the train state and the input pipeline's position.

Each checkpoint is a step directory ``<workdir>/checkpoints/<step>/`` with two items:
``state`` (``ocp.args.StandardSave`` of the :class:`~jaxseg.train.state.TrainState`) and ``data``
(one JSON file per process with the data iterator's ``get_state()``). Orbax writes a step into a
temporary directory and renames it when complete, so a run killed mid-save leaves the previous
checkpoint untouched; leftover temporary directories are ignored and cleaned up on restart.

Retention: the last ``keep`` checkpoints plus the best one by ``best_metric`` (checkpoints saved
after an evaluation carry its metrics).
"""

import dataclasses
import json
import logging
import os
from typing import Any, Mapping

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
      raise FileNotFoundError(f'no data-iterator state for this process at {filename} (was the '
                              'checkpoint written with a different number of processes?)')
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


class Checkpointer:
  """A ``CheckpointManager`` for train state + data iterator with last-K-and-best retention.

  Args:
    directory: where step directories go (created if needed).
    keep: how many of the most recent checkpoints to keep (>= 1).
    best_metric: name of the metric that ranks checkpoints saved with metrics.
    best_mode: ``'max'`` or ``'min'``.

  Example:
    >>> ckpt = Checkpointer('/tmp/run/checkpoints', keep=3, best_metric='accuracy',
    ...                     best_mode='max')
    >>> ckpt.save(100, state, data_iterator)  # doctest: +SKIP
    >>> state = ckpt.restore(ckpt.latest_step(), abstract_state, data_iterator)  # doctest: +SKIP
  """

  def __init__(self, directory: str, *, keep: int, best_metric: str, best_mode: str):
    if keep < 1:
      raise ValueError(f'keep_checkpoints must be >= 1, got {keep}')
    if best_mode not in ('max', 'min'):
      raise ValueError(f"best_mode must be 'max' or 'min', got {best_mode!r}")
    self.best_metric = best_metric
    self.best_mode = best_mode
    policy = checkpoint_managers.AnyPreservationPolicy([
        checkpoint_managers.LatestN(n=keep),
        checkpoint_managers.BestN(
            get_metric_fn=lambda metrics: metrics[best_metric],
            reverse=best_mode == 'min', n=1, keep_checkpoints_without_metrics=False),
    ])
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy,
        # best_fn also makes orbax store each checkpoint's metrics next to it.
        best_fn=lambda metrics: metrics[best_metric],
        best_mode=best_mode,
        cleanup_tmp_directories=True,
        # Synchronous: the state's buffers are donated to the next step, so they must be on the
        # host before save() returns.
        enable_async_checkpointing=False,
        create=True)
    self._manager = ocp.CheckpointManager(
        os.path.abspath(directory), options=options, item_names=('state', 'data'))

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
      if best_value is None or (value > best_value if self.best_mode == 'max'
                                else value < best_value):
        best_step, best_value = step, value
    return best_step, best_value

  def save(self, step: int, state: Any, data_iterator: Any,
           metrics: Mapping[str, float] | None = None) -> None:
    """Saves ``state`` and ``data_iterator``'s position as checkpoint ``step`` (blocking).

    Args:
      step: the train step.
      state: the train state (sharded arrays are written by every process, each its shards).
      data_iterator: the training iterator (``get_state()``).
      metrics: evaluation metrics for best-checkpoint tracking; must contain ``best_metric``.
    """
    if metrics is not None:
      if self.best_metric not in metrics:
        raise ValueError(f'best_metric {self.best_metric!r} is not among the evaluation metrics '
                         f'{sorted(metrics)}')
      metrics = {k: float(v) for k, v in metrics.items()}
    if step in self._manager.all_steps():
      return
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                data=DataIteratorSave(data_iterator)),
        metrics=metrics, force=True)
    self._manager.wait_until_finished()

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
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                      data=DataIteratorRestore(data_iterator)))
    return restored['state']

  def restore_state_tree(self, step: int) -> Any:
    """Returns checkpoint ``step``'s train state as a plain nested dict of arrays (no target).

    For inspection and for loading weights into other code; the data iterator is not touched.
    """
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return restored['state']

  def close(self) -> None:
    self._manager.close()
