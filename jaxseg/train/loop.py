"""``train_and_evaluate``: the training loop every experiment runs.

It binds the task to the config and the dataset, builds the model and optimizer, creates (or
resumes) the sharded train state, and alternates jitted train steps with evaluations, checkpoints
and logging (``docs/architecture.md`` draws the whole path). The pieces
it composes live in their own modules (``state``, ``optimizers``, ``schedules``, ``sharding``,
``steps``, ``checkpoints``, ``logging``); :func:`run` is the loop with the model, task and data
injected, for research code and tests.
"""

import dataclasses
import json
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Mapping

import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxseg.train import checkpoints
from jaxseg.train import config_checks
from jaxseg.train import crf_eval
from jaxseg.train import inference
from jaxseg.train import init_from
from jaxseg.train import logging as run_logging
from jaxseg.train import optimizers
from jaxseg.train import schedules
from jaxseg.train import sharding
from jaxseg.train import steps
from jaxseg.train import workdir_lock
from jaxseg.train.state import TrainState, init_train_state, jit_init
from jaxseg.train.tasks import Task, get_task

RESULTS_FILE = 'results.json'


class NonFiniteError(FloatingPointError):
  """Raised when the loss or a gradient is NaN or Inf; names the step."""


@dataclasses.dataclass
class _Preemption:
  """SIGTERM handling: the loop saves a checkpoint and stops at a step boundary.

  One process: our own SIGTERM handler sets a flag (installed for the ``with`` block, then the
  previous handler is restored). Several processes: JAX's preemption service (started by
  ``jax.distributed.initialize``) hears the signal on any host and agrees on one step at which
  every host stops, so the collective checkpoint save cannot deadlock.
  """

  requested: bool = False
  previous: Any = None

  def __enter__(self) -> '_Preemption':
    if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
      self.previous = signal.signal(
        signal.SIGTERM, lambda signum, frame: setattr(self, 'requested', True)
      )
    return self

  def __exit__(self, *exc_info) -> None:
    if self.previous is not None:
      signal.signal(signal.SIGTERM, self.previous)

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks the loop's fields before anything is built or traced.

  Raises:
    ValueError: naming the first bad field, its value and what was expected.
  """
  config_checks.check_config(config)  # optimizer and schedule ranges
  for field in (
    'total_steps',
    'batch_size',
    'log_every',
    'eval_every',
    'checkpoint_every',
    'keep_checkpoints',
  ):
    value = config[field]
    if not isinstance(value, int) or value < 1:
      raise ValueError(f'config.{field} must be a positive int, got {value!r}')
  eval_steps = config.eval_steps
  if not isinstance(eval_steps, int) or (eval_steps < 1 and eval_steps != -1):
    raise ValueError(
      f'config.eval_steps must be -1 (the whole split) or a positive int, got {eval_steps!r}'
    )
  if config.best_mode not in ('max', 'min'):
    raise ValueError(f"config.best_mode must be 'max' or 'min', got {config.best_mode!r}")
  steps.compute_dtype(config.dtype)
  accumulate = config.optimizer.accumulate_steps
  if not isinstance(accumulate, int) or accumulate < 1 or config.total_steps % accumulate:
    raise ValueError(
      f'config.total_steps={config.total_steps} must be a multiple of '
      f'config.optimizer.accumulate_steps={accumulate}'
    )
  if config.schedule.name == 'plateau' and config.eval_every > config.total_steps:
    raise ValueError(
      'schedule.name=plateau needs evaluations: config.eval_every='
      f'{config.eval_every} exceeds total_steps={config.total_steps}'
    )


def _abstract_with_shardings(abstract: Any, shardings: Any) -> Any:
  return jax.tree.map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings
  )


def _with_valid(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  batch = dict(batch)
  if 'valid' not in batch:
    batch['valid'] = np.ones(len(batch['image']), bool)
  return batch


def evaluate(
  *,
  eval_step: Callable,
  state: TrainState,
  batches: Iterable[Mapping[str, np.ndarray]],
  mesh: jax.sharding.Mesh,
  task: Task,
  max_batches: int = -1,
  crf_sums: Callable | None = None,
) -> tuple[dict[str, float], Any]:
  """Runs ``eval_step`` over ``batches``, sums the task's metric sums, and finalises once.

  Args:
    eval_step: jitted ``(state, global_batch) -> sums``, or ``-> (sums, outputs)`` (an eval step
      made ``with_outputs=True``: the first batch's outputs are kept for example images).
    state: the train state.
    batches: local (per-process) eval batches; a ``'valid'`` mask marks padding.
    mesh: the mesh.
    task: the bound task (``finalize``).
    max_batches: stop after this many batches; -1 = the whole split.
    crf_sums: ``(outputs, local_batch) -> sums`` on the dense CRF's marginals
      (:func:`jaxseg.train.crf_eval.make_crf_sums`; needs an eval step made with outputs);
      their metrics join as ``crf/<name>``.

  Returns:
    ``(metrics, first)``: ``first`` is the first local batch, or ``(first local batch, its
    global outputs)`` when ``eval_step`` returns outputs.
  """
  sums, first, with_crf = None, None, None
  for i, local in enumerate(batches):
    if 0 <= max_batches <= i:
      break
    local = _with_valid(local)
    batch_sums, outputs = eval_step(state, sharding.make_global_batch(local, mesh)), None
    if isinstance(batch_sums, tuple):  # (sums, outputs) of an eval step made with_outputs
      batch_sums, outputs = batch_sums
    if first is None:  # the first batch (with its outputs) for the example images
      first = local if outputs is None else (local, outputs)
    sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
    if crf_sums is not None:
      batch_sums = crf_sums(outputs, local)
      with_crf = batch_sums if with_crf is None else jax.tree.map(jnp.add, with_crf, batch_sums)
  if sums is None:
    raise ValueError('the evaluation split produced no batches')
  metrics = task.finalize(jax.device_get(sums))
  if with_crf is not None:
    metrics = crf_eval.merge_crf_metrics(metrics, task.finalize(jax.device_get(with_crf)))
  return metrics, first


class _TrainMeter:
  """Sums the train step's scalars between log lines and checks them for NaN/Inf.

  The check of step ``s`` runs when step ``s + 1`` has been dispatched (one step behind, so the
  host never stalls the device), and at once before a log line or a checkpoint.
  """

  def __init__(self, batch_size: int, step: int, ckpt: checkpoints.Checkpointer):
    self.batch_size, self.ckpt = batch_size, ckpt
    self.sums, self.count, self.pending = None, 0, None
    self.last_step, self.last_time, self.timed = step, time.perf_counter(), False

  def add(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    if self.pending is not None:
      self.check(*self.pending)
    self.pending = (step, metrics)
    scalars = {k: v for k, v in metrics.items() if k not in ('finite', 'learning_rate')}
    self.sums = scalars if self.sums is None else jax.tree.map(jnp.add, self.sums, scalars)
    self.count += 1
    if not self.timed:
      # The first step of a run includes compiling the train step: the rate (and the ETA) are
      # timed from its end, so they never count compilation.
      jax.block_until_ready(metrics['loss'])
      self.last_step, self.last_time, self.timed = step, time.perf_counter(), True

  def check(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    finite, loss, grad_norm = jax.device_get(
      (metrics['finite'], metrics['loss'], metrics['grad_norm'])
    )
    if not finite:
      raise NonFiniteError(
        f'non-finite loss or gradient at step {step} (loss={float(loss)}, '
        f'grad_norm={float(grad_norm)}); training stopped. ' + self.ckpt.describe_last_good()
      )

  def flush(self, step: int, metrics: Mapping[str, jax.Array], logger) -> None:
    """Logs the means since the last line, the step's learning rate and the throughput."""
    self.check(step, metrics)
    now = time.perf_counter()
    # 0 (ETA unknown) when only the compiling first step has run since the last line.
    steps_per_sec = (step - self.last_step) / max(now - self.last_time, 1e-9)
    sums, learning_rate = jax.device_get((self.sums, metrics['learning_rate']))
    logged = {k: float(v) / self.count for k, v in sums.items()}
    logged['learning_rate'] = float(learning_rate)
    logger.log(
      step,
      'train',
      logged,
      steps_per_sec=steps_per_sec,
      images_per_sec=steps_per_sec * self.batch_size,
    )
    self.sums, self.count, self.last_step, self.last_time = None, 0, step, now


def run(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  model: Any,
  task: Task,
  input_shape: tuple[int, int, int],
  make_train_iterator: Callable[..., Iterator[Mapping[str, np.ndarray]]],
  make_eval_iterator: Callable[..., Iterable[Mapping[str, np.ndarray]]],
) -> dict[str, Any]:
  """Trains ``model`` on ``task`` for ``config.total_steps``, resuming from ``workdir``.

  Args:
    config: the experiment config (see ``docs/training.md``).
    workdir: run directory: ``checkpoints/``, ``metrics.jsonl``, ``tb/``, ``config.json``,
      ``results.json``.
    model: a Flax module, ``apply(variables, images, train=...) -> (outputs, endpoints)``.
    task: the bound task (:class:`jaxseg.train.tasks.Task`).
    input_shape: ``(H, W, C)`` of one image, used to initialise the model.
    make_train_iterator: ``(process_index, process_count) ->`` an endless iterator of this process's
      training batches (numpy dicts) with ``get_state()``/``set_state()``.
    make_eval_iterator: ``(process_index, process_count) ->`` a finite iterable of eval batches.

  Returns:
    The final evaluation metrics plus ``step``, ``best_<metric>`` and ``best_step``.

  Raises:
    NonFiniteError: if the loss or a gradient becomes NaN/Inf.
  """
  validate_config(config)
  os.makedirs(workdir, exist_ok=True)
  notes = []
  # One run per workdir (per process index): taken before anything in it is opened for writing.
  lock = workdir_lock.WorkdirLock(workdir, jax.process_index(), note=notes.append).acquire()
  logger = ckpt = None
  try:
    logger = run_logging.MetricsLogger(workdir, total_steps=config.total_steps)
    for line in notes:
      logger.info(line)
    ckpt = checkpoints.Checkpointer(
      os.path.join(workdir, 'checkpoints'),
      keep=config.keep_checkpoints,
      best_metric=config.best_metric,
      best_mode=config.best_mode,
    )
    return _run(
      config,
      workdir,
      logger,
      ckpt,
      model=model,
      task=task,
      input_shape=input_shape,
      make_train_iterator=make_train_iterator,
      make_eval_iterator=make_eval_iterator,
    )
  finally:
    # Every exit path (errors included) closes the checkpointer's thread pools before the
    # interpreter shuts down, then the logger, then frees the workdir.
    try:
      if ckpt is not None:
        ckpt.close()
    finally:
      try:
        if logger is not None:
          logger.close()
      finally:
        lock.release()


@dataclasses.dataclass
class _Compiled:
  """What the loop builds from the config once: mesh, state shardings and the jitted functions."""

  mesh: jax.sharding.Mesh
  init_state: Callable[[], TrainState]
  abstract_state: Any
  state_shardings: Any
  train_step: Callable
  eval_step: Callable
  update_plateau: Callable
  crf_sums: Callable | None


def _compile(
  config: ml_collections.ConfigDict, *, model: Any, task: Task, input_shape: tuple[int, int, int]
) -> _Compiled:
  """Builds the mesh, optimizer, state shardings and the jitted step functions."""
  mesh = sharding.make_mesh(config.mesh)
  sharding.local_batch_size(config.batch_size, mesh)  # checks divisibility before tracing
  dtype = steps.compute_dtype(config.dtype)
  schedule = schedules.make_schedule(
    config.schedule,
    learning_rate=float(config.optimizer.learning_rate),
    total_updates=config.total_steps // config.optimizer.accumulate_steps,
  )
  tx = optimizers.make_optimizer(config.optimizer, schedule=schedule)
  plateau_tx = schedules.make_plateau(config.schedule)

  def init_state():
    # Keys made inside the jitted function from the seed: no host-to-device transfer.
    return init_train_state(
      model=model,
      input_shape=input_shape,
      dtype=dtype,
      seed=config.seed,
      tx=tx,
      plateau_tx=plateau_tx,
    )

  def update_plateau(plateau, metric):
    return schedules.update_plateau(plateau_tx, plateau, metric=metric, mode=config.best_mode)

  abstract_state = jax.eval_shape(init_state)
  state_shardings = sharding.state_shardings(
    abstract_state, mesh, fsdp_min_size=config.mesh.fsdp_min_size
  )
  batch_sharding, replicated = sharding.batch_sharding(mesh), sharding.replicated(mesh)
  crf_options = crf_eval.crf_options(config)
  # The example images and the CRF read the eval step's outputs: no second forward pass.
  with_outputs = bool(config.write_images or crf_options is not None)
  eval_shardings = (replicated, batch_sharding) if with_outputs else replicated
  return _Compiled(
    mesh=mesh,
    init_state=jit_init(init_state, out_shardings=state_shardings),
    abstract_state=abstract_state,
    state_shardings=state_shardings,
    train_step=jax.jit(
      steps.make_train_step(model=model, task=task, tx=tx, config=config, schedule=schedule),
      in_shardings=(state_shardings, batch_sharding),
      out_shardings=(state_shardings, replicated),
      donate_argnums=0,
    ),
    eval_step=jax.jit(
      steps.make_eval_step(model=model, task=task, config=config, with_outputs=with_outputs),
      in_shardings=(state_shardings, batch_sharding),
      out_shardings=eval_shardings,
    ),
    update_plateau=jax.jit(update_plateau, out_shardings=state_shardings.plateau),
    crf_sums=(
      None if crf_options is None else crf_eval.make_crf_sums(task=task, options=crf_options)
    ),
  )


def _run(
  config,
  workdir,
  logger,
  ckpt,
  *,
  model,
  task,
  input_shape,
  make_train_iterator,
  make_eval_iterator,
):
  """Restores or initialises the state, then until ``total_steps``: a train step, and at their
  intervals a log line, an evaluation (plateau update, example images) and a checkpoint; a
  preemption saves and stops. Returns the final metrics with the checkpointer's best."""
  c = _compile(config, model=model, task=task, input_shape=input_shape)
  train_iter = make_train_iterator(**_processes())
  state = _initial_state(config, c, ckpt, train_iter, logger, model=model, input_shape=input_shape)
  step = int(jax.device_get(state.step))
  results_path = os.path.join(workdir, RESULTS_FILE)
  if step >= config.total_steps and os.path.exists(results_path):
    with open(results_path) as f:
      results = json.load(f)
    # Running a finished run again: say so and show what it got, not only "resumed".
    logger.info(
      f'the run in {workdir} is already complete (step {step} of '
      f'{config.total_steps}); its results ({results_path}): '
      + ', '.join(
        f'{k} {v:.5g}' if isinstance(v, float) else f'{k} {v}' for k, v in results.items()
      )
    )
    return results
  _log_start(config, workdir, c, logger)
  meter, eval_metrics = _TrainMeter(config.batch_size, step, ckpt), {}
  with _Preemption() as preemption:
    while step < config.total_steps:
      state, metrics = c.train_step(state, sharding.make_global_batch(next(train_iter), c.mesh))
      step += 1
      meter.add(step, metrics)
      last = step == config.total_steps
      evaluate_now, preempted = step % config.eval_every == 0 or last, preemption.reached(step)
      if step % config.log_every == 0 or last:
        meter.flush(step, metrics, logger)
      if evaluate_now:
        state, eval_metrics = _evaluate(
          config, workdir, c, task, state, step, logger, make_eval_iterator
        )
      if evaluate_now or preempted or step % config.checkpoint_every == 0:
        meter.check(step, metrics)
        ckpt.save(step, state, train_iter, metrics=eval_metrics if evaluate_now else None)
      if preempted:
        logger.info(f'SIGTERM: saved checkpoint step {step}; stopping.')
        return {'step': step, 'preempted': True, **eval_metrics}
  if not eval_metrics:  # restarted at the end without results (killed after the last save)
    state, eval_metrics = _evaluate(
      config, workdir, c, task, state, step, logger, make_eval_iterator
    )
  return _write_results(config, results_path, step, eval_metrics, ckpt)


def _processes() -> dict[str, int]:
  return {'process_index': jax.process_index(), 'process_count': jax.process_count()}


def _initial_state(
  config, c: _Compiled, ckpt: checkpoints.Checkpointer, train_iter, logger, *, model, input_shape
) -> TrainState:
  """The newest checkpoint that verifies (with the data iterator's position), else a fresh or
  imported state. Damaged checkpoints are named, moved aside and the next older one tried."""
  latest, state = ckpt.restore_latest(
    _abstract_with_shardings(c.abstract_state, c.state_shardings), train_iter, note=logger.info
  )
  if latest is not None:
    logger.info(f'resumed from checkpoint step {latest} in {ckpt.directory}')
    return state
  state = c.init_state()
  if config.init_from:
    state = _init_from(state, config, c, logger, model=model, input_shape=input_shape)
  return state


def _log_start(config, workdir: str, c: _Compiled, logger) -> None:
  run_logging.save_config(config, workdir)
  table, total = run_logging.parameter_table(c.abstract_state.params)
  logger.info(f'{total:,} parameters\n{table}')


def _evaluate(
  config,
  workdir: str,
  c: _Compiled,
  task: Task,
  state: TrainState,
  step: int,
  logger,
  make_eval_iterator,
) -> tuple[TrainState, dict[str, float]]:
  """Evaluates, logs, feeds the plateau schedule and writes the first batch's images."""
  metrics, first = evaluate(
    eval_step=c.eval_step,
    state=state,
    batches=make_eval_iterator(**_processes()),
    mesh=c.mesh,
    task=task,
    max_batches=config.eval_steps,
    crf_sums=c.crf_sums,
  )
  logger.log(step, 'eval', metrics)
  if config.best_metric not in metrics:
    raise ValueError(
      f'config.best_metric={config.best_metric!r} is not an evaluation metric of '
      f'task {task.name!r}: {sorted(metrics)}'
    )
  if config.schedule.name == 'plateau':
    # An explicit transfer of one scalar; the plateau state stays on the devices, sharded.
    metric = jax.device_put(np.float32(metrics[config.best_metric]), sharding.replicated(c.mesh))
    state = state.replace(plateau=c.update_plateau(state.plateau, metric))
  if config.write_images:
    local, outputs = first
    # Every process holds its rows of the global outputs; only process 0 writes.
    if jax.process_index() == 0:
      task.write_images(
        workdir,
        step,
        local,
        _local_rows(outputs, len(local['image'])),
        num_images=config.num_images,
      )
  return state, metrics


def _write_results(
  config,
  results_path: str,
  step: int,
  eval_metrics: Mapping[str, float],
  ckpt: checkpoints.Checkpointer,
) -> dict[str, Any]:
  best_step, best_value = ckpt.best()
  # The final evaluation is of the state saved as checkpoint `step` (the latest, always kept).
  # Normally that checkpoint stored these metrics already; after a restart at the end its stored
  # metrics may be missing (it was saved by a preemption or before a NaN), so count them here.
  final = float(eval_metrics[config.best_metric])
  if best_value is None or (
    final > best_value if config.best_mode == 'max' else final < best_value
  ):
    best_step, best_value = step, final
  results = {
    'step': step,
    'num_devices': jax.device_count(),
    **eval_metrics,
    f'best_{config.best_metric}': best_value,
    'best_step': best_step,
  }
  if jax.process_index() == 0:
    with open(results_path, 'w') as f:
      json.dump(results, f, indent=2)
  return results


def _init_from(
  state: TrainState,
  config: ml_collections.ConfigDict,
  c: _Compiled,
  logger: run_logging.MetricsLogger,
  *,
  model: Any,
  input_shape: tuple[int, int, int],
) -> TrainState:
  """Replaces the fresh state's matching params/batch_stats with ``config.init_from``'s."""
  fresh = {'params': state.params, 'batch_stats': state.batch_stats}
  merged, report = init_from.init_variables_from(
    config.init_from, fresh, model=model, subtree=config.init_from_subtree, input_shape=input_shape
  )
  logger.info(init_from.format_report(report))
  shardings = {'params': c.state_shardings.params, 'batch_stats': c.state_shardings.batch_stats}

  def place(value, fresh_value, sharding_):
    if value is fresh_value:  # a new entry keeps its (already sharded) initialisation
      return value
    return jax.make_array_from_callback(value.shape, sharding_, lambda index: value[index])

  # The imported weights are host arrays: their one upload is deliberate (the transfer guard of
  # the loop's tests would otherwise flag make_array_from_callback).
  with jax.transfer_guard('allow'):
    placed = jax.tree.map(place, merged, fresh, shardings)
  return state.replace(params=placed['params'], batch_stats=placed['batch_stats'])


def _local_rows(outputs: Any, n: int) -> Any:
  """Returns the first ``n`` rows of global ``outputs`` that this process can address."""

  def rows(x):
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return (
      np.concatenate(jax.device_get([s.data for s in shards if s.replica_id == 0]))[:n]
      if x.ndim
      else (jax.device_get(x))
    )

  return jax.tree.map(rows, outputs)


def _model_kwargs(config: ml_collections.ConfigDict, task_class: Any, info: Any) -> dict[str, Any]:
  """``config.model`` (less ``name``) over what the dataset implies, with the compute dtype."""
  implied = task_class.model_kwargs(info)
  kwargs = {**implied, **{k: v for k, v in config.model.to_dict().items() if k != 'name'}}
  kwargs['dtype'] = steps.compute_dtype(config.dtype)
  if kwargs.get('num_classes', 0) < implied.get('num_classes', 0):
    # Labels past the last logit would make the loss NaN at the first step: say why up front.
    raise ValueError(
      f'config.model.num_classes={kwargs["num_classes"]} but dataset {config.data.name!r} '
      f'has {implied["num_classes"]} classes: expected at least {implied["num_classes"]} (or '
      "leave it unset to take the dataset's)."
    )
  return kwargs


def build_model(config: ml_collections.ConfigDict, info: Any) -> Any:
  """The model a run trains: ``config.model`` over what the dataset implies (``num_classes``).

  Training and inference (``jaxseg.train.load_for_inference``) build it here, so both agree.

  Args:
    config: the run's config.
    info: the dataset's :class:`jaxseg.data.DatasetInfo`.

  Returns:
    The Flax module.
  """
  from jaxseg import models as jaxseg_models  # pylint: disable=g-import-not-at-top

  return jaxseg_models.get_model(
    config.model.name, **_model_kwargs(config, get_task(info.task), info)
  )


def build_run_parts(
  config: ml_collections.ConfigDict,
) -> tuple[Any, dict[str, Any]]:
  """The pieces ``run`` takes, assembled from a config: dataset, bound task, model, iterators.

  The one place where a config meets its dataset: the config is validated, the dataset's
  ``DatasetInfo`` built (or read), ``config.task`` checked against it, the task bound to the
  loss options and the dataset, the model built, and the two iterator factories made (the
  training split shuffled and repeated with ``config.seed``, the evaluation split once).
  ``train_and_evaluate`` and the vectorized population (``population.py``) both start here.

  Args:
    config: an experiment config (``experiments/configs/*.py``).

  Returns:
    ``(info, run_kwargs)``: the ``DatasetInfo``, and ``run``'s keyword arguments ``task``,
    ``model``, ``input_shape``, ``make_train_iterator`` and ``make_eval_iterator``.

  Raises:
    ValueError: a config error, or ``config.task`` differing from the dataset's task.
  """
  # Imported here so the loop's building blocks stay usable without the data and model layers.
  from jaxseg import data as jaxseg_data  # pylint: disable=g-import-not-at-top

  validate_config(config)
  info = jaxseg_data.dataset_info(config.data)
  if config.task != info.task:
    raise ValueError(
      f'config.task={config.task!r} but dataset {config.data.name!r} is a {info.task!r} dataset'
    )

  def make_iterator(split, train, **extra):
    def make(*, process_index, process_count):
      return jaxseg_data.make_iterator(
        config.data,
        split=split,
        global_batch_size=config.batch_size,
        seed=config.seed,
        train=train,
        process_index=process_index,
        process_count=process_count,
        **extra,
      )

    return make

  task = get_task(info.task).bind(config.loss, info)  # a bad loss option fails here, first
  return info, {
    'task': task,
    'model': build_model(config, info),
    'input_shape': tuple(info.image_shape),
    'make_train_iterator': make_iterator(info.train_split, True),
    'make_eval_iterator': make_iterator(info.eval_split, False, num_epochs=1),
  }


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Trains and evaluates the experiment described by ``config`` in ``workdir``.

  Starting again with the same ``workdir`` resumes from the latest checkpoint (parameters,
  optimizer and plateau state, step, rng and the data iterator's position); a finished run returns
  its saved results.

  Args:
    config: an experiment config (``experiments/configs/*.py``).
    workdir: the run directory.

  Returns:
    The final evaluation metrics plus ``step``, ``best_<metric>`` and ``best_step``.

  Example (trains LeNet-5 on the offline digits set; about a minute on a laptop CPU)::

    from experiments.configs import lenet5_digits
    train_and_evaluate(lenet5_digits.get_config(), '/tmp/lenet')
  """
  sharding.maybe_initialize_distributed()
  info, run_kwargs = build_run_parts(config)
  inference.save_dataset_info(info, workdir)  # what load_for_inference reads back
  results = run(config, workdir, **run_kwargs)
  _plot_curves(workdir)
  return results


def _plot_curves(workdir: str) -> None:
  """``<workdir>/curves.png`` from ``metrics.jsonl`` (process 0); a failure only warns."""
  if jax.process_index() != 0:
    return
  from jaxseg.viz import run_curves  # pylint: disable=g-import-not-at-top

  warning = run_curves.draw_run(workdir)
  if warning:  # the run's results stand without the picture
    print(warning)
