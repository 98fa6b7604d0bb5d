"""``train_and_evaluate``: the training loop every experiment runs.

It builds the task, dataset, model and optimizer from the config, creates (or resumes) the sharded
train state, and alternates jitted train steps with evaluations, checkpoints and logging. The pieces
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
from jaxseg.train import crf_eval
from jaxseg.train import inference
from jaxseg.train import init_from
from jaxseg.train import logging as run_logging
from jaxseg.train import optimizers
from jaxseg.train import schedules
from jaxseg.train import sharding
from jaxseg.train import steps
from jaxseg.train import workdir_lock
from jaxseg.train.state import TrainState, create_train_state
from jaxseg.train.tasks import Task, get_task

RESULTS_FILE = 'results.json'


class NonFiniteError(FloatingPointError):
  """Raised when the loss or a gradient is NaN or Inf; names the step."""


@dataclasses.dataclass
class _Preemption:
  """SIGTERM handling: the loop saves a checkpoint and stops at a step boundary.

  One process: our own SIGTERM handler sets a flag. Several processes: JAX's preemption service
  (started by ``jax.distributed.initialize``) hears the signal on any host and agrees on one step
  at which every host stops, so the collective checkpoint save cannot deadlock.
  """
  requested: bool = False

  def install(self):
    if jax.process_count() > 1 or threading.current_thread() is not threading.main_thread():
      return None
    return signal.signal(signal.SIGTERM, lambda signum, frame: setattr(self, 'requested', True))

  def reached(self, step: int) -> bool:
    if jax.process_count() > 1:
      return multihost_utils.reached_preemption_sync_point(step)
    return self.requested


def validate_config(config: ml_collections.ConfigDict) -> None:
  """Checks the loop's fields before anything is built or traced.

  Raises:
    ValueError: naming the first bad field, its value and what was expected.
  """
  for field in ('total_steps', 'batch_size', 'log_every', 'eval_every', 'checkpoint_every',
                'keep_checkpoints'):
    value = config[field]
    if not isinstance(value, int) or value < 1:
      raise ValueError(f'config.{field} must be a positive int, got {value!r}')
  eval_steps = config.get('eval_steps', -1)
  if not isinstance(eval_steps, int) or (eval_steps < 1 and eval_steps != -1):
    raise ValueError(f'config.eval_steps must be -1 (the whole split) or a positive int, '
                     f'got {eval_steps!r}')
  if config.best_mode not in ('max', 'min'):
    raise ValueError(f"config.best_mode must be 'max' or 'min', got {config.best_mode!r}")
  steps.compute_dtype(config.dtype)
  accumulate = int(config.optimizer.get('accumulate_steps', 1))
  if accumulate < 1 or config.total_steps % accumulate:
    raise ValueError(f'config.total_steps={config.total_steps} must be a multiple of '
                     f'config.optimizer.accumulate_steps={accumulate}')
  if config.schedule.name == 'plateau' and config.eval_every > config.total_steps:
    raise ValueError('schedule.name=plateau needs evaluations: config.eval_every='
                     f'{config.eval_every} exceeds total_steps={config.total_steps}')


def _abstract_with_shardings(abstract: Any, shardings: Any) -> Any:
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                      abstract, shardings)


def _put_global(tree: Any, shardings: Any) -> Any:
  """Places identical host values on every process as global arrays with ``shardings``."""
  def put(value, s):
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, s, lambda index: value[index])
  return jax.tree.map(put, jax.device_get(tree), shardings)


def _check_finite(step: int, metrics: Mapping[str, jax.Array], ckpt: checkpoints.Checkpointer):
  if not bool(metrics['finite']):
    loss = float(metrics['loss'])
    raise NonFiniteError(
        f'non-finite loss or gradient at step {step} (loss={loss}, '
        f'grad_norm={float(metrics["grad_norm"])}); training stopped. '
        + ckpt.describe_last_good())


def _with_valid(batch: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  batch = dict(batch)
  if 'valid' not in batch:
    batch['valid'] = np.ones(len(batch['image']), bool)
  return batch


def evaluate(*, eval_step: Callable, state: TrainState, batches: Iterable[Mapping[str, np.ndarray]],
             mesh: jax.sharding.Mesh, task: Task, max_batches: int = -1,
             crf_sums: Callable | None = None) -> tuple[dict[str, float], Any]:
  """Runs ``eval_step`` over ``batches``, sums the task's metric sums, and finalises once.

  Args:
    eval_step: jitted ``(state, global_batch) -> sums``.
    state: the train state.
    batches: local (per-process) eval batches; a ``'valid'`` mask marks padding.
    mesh: the mesh.
    task: the bound task (``finalize``).
    max_batches: stop after this many batches; -1 = the whole split.
    crf_sums: ``(state, local, global_batch) -> sums`` on the dense CRF's marginals
      (:func:`jaxseg.train.crf_eval.make_crf_sums`); their metrics join as ``crf/<name>``.

  Returns:
    ``(metrics, first_local_batch)``.
  """
  sums, first, with_crf = None, None, None
  for i, local in enumerate(batches):
    if 0 <= max_batches <= i:
      break
    local = _with_valid(local)
    first = first if first is not None else local
    global_batch = sharding.make_global_batch(local, mesh)
    batch_sums = eval_step(state, global_batch)
    sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
    if crf_sums is not None:
      batch_sums = crf_sums(state, local, global_batch)
      with_crf = batch_sums if with_crf is None else jax.tree.map(jnp.add, with_crf, batch_sums)
  if sums is None:
    raise ValueError('the evaluation split produced no batches')
  metrics = task.finalize(jax.device_get(sums))
  if with_crf is not None:
    metrics = crf_eval.merge_crf_metrics(metrics, task.finalize(jax.device_get(with_crf)))
  return metrics, first


@dataclasses.dataclass
class _Throughput:
  """Steps/s and images/s since the previous measurement."""
  batch_size: int
  last_step: int = 0
  previous_step: int = 0
  last_time: float = dataclasses.field(default_factory=time.perf_counter)

  def measure(self, step: int) -> tuple[float, float]:
    now = time.perf_counter()
    steps_per_sec = (step - self.last_step) / max(now - self.last_time, 1e-9)
    self.previous_step, self.last_step, self.last_time = self.last_step, step, now
    return steps_per_sec, steps_per_sec * self.batch_size


def run(config: ml_collections.ConfigDict, workdir: str, *, model: Any, task: Task,
        input_shape: tuple[int, int, int],
        make_train_iterator: Callable[..., Iterator[Mapping[str, np.ndarray]]],
        make_eval_iterator: Callable[..., Iterable[Mapping[str, np.ndarray]]]) -> dict[str, Any]:
  """Trains ``model`` on ``task`` for ``config.total_steps``, resuming from ``workdir``.

  Args:
    config: the experiment config (see ``docs/training.md``).
    workdir: run directory: ``checkpoints/``, ``metrics.jsonl``, ``tb/``, ``config.json``,
      ``results.json``.
    model: a Flax module, ``apply(variables, images, train=...) -> (outputs, endpoints)``.
    task: the task.
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
  results_path = os.path.join(workdir, RESULTS_FILE)
  notes = []
  # One run per workdir (per process index): taken before anything in it is opened for writing.
  lock = workdir_lock.WorkdirLock(workdir, jax.process_index(), note=notes.append).acquire()
  logger = ckpt = None
  try:
    logger = run_logging.MetricsLogger(workdir, total_steps=config.total_steps)
    for line in notes:
      logger.info(line)
    ckpt = checkpoints.Checkpointer(
        os.path.join(workdir, 'checkpoints'), keep=config.keep_checkpoints,
        best_metric=config.best_metric, best_mode=config.best_mode)
    return _run(config, workdir, results_path, logger, ckpt, model=model, task=task,
                input_shape=input_shape, make_train_iterator=make_train_iterator,
                make_eval_iterator=make_eval_iterator)
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
  """What the loop builds from the config once: mesh, optimizer and the jitted functions."""
  mesh: jax.sharding.Mesh
  schedule: Callable[[int], Any]
  plateau_tx: Any
  init_state: Callable[[jax.Array], TrainState]
  abstract_state: Any
  state_shardings: Any
  train_step: Callable
  eval_step: Callable
  predict: Callable


def _compile(config: ml_collections.ConfigDict, *, model: Any, task: Task,
             input_shape: tuple[int, int, int]) -> _Compiled:
  """Builds the mesh, optimizer, state shardings and the jitted step functions."""
  mesh = sharding.make_mesh(config.mesh)
  sharding.local_batch_size(config.batch_size, mesh)  # checks divisibility before tracing
  dtype = steps.compute_dtype(config.dtype)
  accumulate = int(config.optimizer.get('accumulate_steps', 1))
  schedule = schedules.make_schedule(
      config.schedule, learning_rate=float(config.optimizer.learning_rate),
      total_updates=config.total_steps // accumulate)
  tx = optimizers.make_optimizer(config.optimizer, schedule=schedule)
  plateau_tx = schedules.make_plateau(config.schedule)
  state_rng = jax.random.key_data(jax.random.fold_in(jax.random.key(config.seed), 1))

  def init_state(rng):
    variables = model.init({'params': rng, 'dropout': rng},
                           jnp.zeros((1, *input_shape), dtype), train=False)
    return create_train_state(variables=dict(variables), tx=tx, plateau_tx=plateau_tx,
                              rng=state_rng)

  abstract_state = jax.eval_shape(init_state, jax.random.key(0))
  state_shardings = sharding.state_shardings(
      abstract_state, mesh, fsdp_min_size=int(config.mesh.get('fsdp_min_size', -1)))
  batch_sharding = sharding.batch_sharding(mesh)
  replicated = sharding.replicated(mesh)
  return _Compiled(
      mesh=mesh, schedule=schedule, plateau_tx=plateau_tx,
      init_state=jax.jit(init_state, out_shardings=state_shardings),
      abstract_state=abstract_state, state_shardings=state_shardings,
      train_step=jax.jit(steps.make_train_step(model=model, task=task, tx=tx, config=config),
                         in_shardings=(state_shardings, batch_sharding),
                         out_shardings=(state_shardings, replicated), donate_argnums=0),
      eval_step=jax.jit(steps.make_eval_step(model=model, task=task, config=config),
                        in_shardings=(state_shardings, batch_sharding), out_shardings=replicated),
      predict=jax.jit(lambda state, batch: steps.apply_for_outputs(model, state, batch,
                                                                   dtype=dtype),
                      in_shardings=(state_shardings, batch_sharding)))


def _run(config, workdir, results_path, logger, ckpt, *, model, task, input_shape,
         make_train_iterator, make_eval_iterator):
  c = _compile(config, model=model, task=task, input_shape=input_shape)
  processes = {'process_index': jax.process_index(), 'process_count': jax.process_count()}
  train_iter = make_train_iterator(**processes)
  # The newest checkpoint that verifies; damaged ones are named and moved aside.
  latest, state = ckpt.restore_latest(
      _abstract_with_shardings(c.abstract_state, c.state_shardings), train_iter,
      note=logger.info)
  if latest is None:
    state = c.init_state(jax.random.key(config.seed))
    if config.get('init_from', ''):
      state = _init_from(state, config, c, logger, model=model, input_shape=input_shape)
  else:
    logger.info(f'resumed from checkpoint step {latest} in {ckpt.directory}')
  step = int(state.step)
  if step >= config.total_steps and os.path.exists(results_path):
    with open(results_path) as f:
      return json.load(f)

  run_logging.save_config(config, workdir)
  table, total = run_logging.parameter_table(c.abstract_state.params)
  logger.info(f'{total:,} parameters\n{table}')

  options = crf_eval.crf_options(config)
  crf_sums = (None if options is None else
              crf_eval.make_crf_sums(predict=c.predict, task=task, options=options))

  def evaluate_and_log(state, step):
    metrics, first = evaluate(eval_step=c.eval_step, state=state,
                              batches=make_eval_iterator(**processes), mesh=c.mesh, task=task,
                              max_batches=config.eval_steps, crf_sums=crf_sums)
    logger.log(step, 'eval', metrics)
    _track_best(best, metrics, step, config)
    return metrics, first

  accumulate = int(config.optimizer.get('accumulate_steps', 1))
  preemption = _Preemption()
  previous_handler = preemption.install()
  throughput = _Throughput(config.batch_size, last_step=step)
  best_step, best_value = ckpt.best()
  best = {'value': best_value, 'step': best_step}
  eval_metrics: dict[str, float] = {}
  sums, pending = None, None
  try:
    while step < config.total_steps:
      state, metrics = c.train_step(state, sharding.make_global_batch(next(train_iter), c.mesh))
      step += 1
      if pending is not None:  # one step behind, so the host does not stall the device
        _check_finite(*pending, ckpt)
      pending = (step, metrics)
      scalars = {k: v for k, v in metrics.items() if k != 'finite'}
      sums = scalars if sums is None else jax.tree.map(jnp.add, sums, scalars)
      is_last = step == config.total_steps
      log_now = step % config.log_every == 0 or is_last
      evaluate_now = step % config.eval_every == 0 or is_last
      preempted = preemption.reached(step)
      save_now = step % config.checkpoint_every == 0 or evaluate_now or preempted

      if log_now or save_now:
        _check_finite(step, metrics, ckpt)
      if log_now:
        steps_per_sec, images_per_sec = throughput.measure(step)
        logged = {k: float(v) / (step - throughput.previous_step)
                  for k, v in jax.device_get(sums).items()}
        logged['learning_rate'] = (float(c.schedule(step // accumulate))
                                   * float(state.plateau.scale))
        logger.log(step, 'train', logged, steps_per_sec=steps_per_sec,
                   images_per_sec=images_per_sec)
        sums = None
      if evaluate_now:
        eval_metrics, first = evaluate_and_log(state, step)
        if config.schedule.name == 'plateau':
          new_plateau = schedules.update_plateau(
              c.plateau_tx, jax.device_get(state.plateau),
              metric=float(eval_metrics[config.best_metric]), mode=config.best_mode)
          state = state.replace(plateau=_put_global(new_plateau, c.state_shardings.plateau))
        if config.get('write_images', False):
          # Every process computes (the batch is global); only process 0 writes.
          outputs = c.predict(state, sharding.make_global_batch(first, c.mesh))
          if jax.process_index() == 0:
            task.write_images(workdir, step, first, _local_rows(outputs, len(first['image'])),
                              num_images=config.num_images)
      if save_now:
        ckpt.save(step, state, train_iter, metrics=eval_metrics if evaluate_now else None)
      if preempted:
        logger.info(f'SIGTERM: saved checkpoint step {step}; stopping.')
        return {'step': step, 'preempted': True, **eval_metrics}
  finally:
    if previous_handler is not None:
      signal.signal(signal.SIGTERM, previous_handler)

  if not eval_metrics:  # restarted at the end without results (killed after the last save)
    eval_metrics, _ = evaluate_and_log(state, step)
  results = {'step': step, 'num_devices': jax.device_count(), **eval_metrics,
             f'best_{config.best_metric}': best['value'], 'best_step': best['step']}
  if jax.process_index() == 0:
    with open(results_path, 'w') as f:
      json.dump(results, f, indent=2)
  return results


def _init_from(state: TrainState, config: ml_collections.ConfigDict, c: _Compiled,
               logger: run_logging.MetricsLogger, *, model: Any,
               input_shape: tuple[int, int, int]) -> TrainState:
  """Replaces the fresh state's matching params/batch_stats with ``config.init_from``'s."""
  fresh = {'params': state.params, 'batch_stats': state.batch_stats}
  merged, report = init_from.init_variables_from(
      config.init_from, fresh, model=model, subtree=config.get('init_from_subtree', ''),
      input_shape=input_shape)
  logger.info(init_from.format_report(report))
  shardings = {'params': c.state_shardings.params, 'batch_stats': c.state_shardings.batch_stats}

  def place(value, fresh_value, sharding_):
    if value is fresh_value:  # a new entry keeps its (already sharded) initialisation
      return value
    return jax.make_array_from_callback(value.shape, sharding_, lambda index: value[index])

  placed = jax.tree.map(place, merged, fresh, shardings)
  return state.replace(params=placed['params'], batch_stats=placed['batch_stats'])


def _local_rows(outputs: Any, n: int) -> Any:
  """Returns the first ``n`` rows of global ``outputs`` that this process can address."""
  def rows(x):
    shards = sorted(x.addressable_shards, key=lambda s: s.index[0].start or 0)
    return np.concatenate([np.asarray(s.data) for s in shards
                           if s.replica_id == 0])[:n] if x.ndim else np.asarray(x)
  return jax.tree.map(rows, outputs)


def _track_best(best: dict[str, Any], metrics: Mapping[str, float], step: int,
                config: ml_collections.ConfigDict) -> None:
  if config.best_metric not in metrics:
    raise ValueError(f'config.best_metric={config.best_metric!r} is not an evaluation metric of '
                     f'task {config.task!r}: {sorted(metrics)}')
  value = float(metrics[config.best_metric])
  better = (best['value'] is None or (value > best['value'] if config.best_mode == 'max'
                                      else value < best['value']))
  if better:
    best.update(value=value, step=step)


def _model_kwargs(config: ml_collections.ConfigDict, task_class: Any,
                  info: Any) -> dict[str, Any]:
  """``config.model`` (less ``name``) over what the dataset implies, with the compute dtype."""
  implied = task_class.model_kwargs(info)
  kwargs = {**implied, **{k: v for k, v in config.model.to_dict().items() if k != 'name'}}
  kwargs['dtype'] = steps.compute_dtype(config.dtype)
  if kwargs.get('num_classes', 0) < implied.get('num_classes', 0):
    # Labels past the last logit would make the loss NaN at the first step: say why up front.
    raise ValueError(
        f'config.model.num_classes={kwargs["num_classes"]} but dataset {config.data.name!r} '
        f'has {implied["num_classes"]} classes: expected at least {implied["num_classes"]} (or '
        'leave it unset to take the dataset\'s).')
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
  return jaxseg_models.get_model(config.model.name,
                                 **_model_kwargs(config, get_task(info.task), info))


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
  # Imported here so the loop's building blocks stay usable without the data and model layers.
  from jaxseg import data as jaxseg_data  # pylint: disable=g-import-not-at-top

  sharding.maybe_initialize_distributed()
  validate_config(config)
  info = jaxseg_data.dataset_info(config.data)
  if config.task != info.task:
    raise ValueError(f'config.task={config.task!r} but dataset {config.data.name!r} is a '
                     f'{info.task!r} dataset')
  task_class = get_task(info.task)
  task = task_class.bind(config.loss, info)
  model = build_model(config, info)
  inference.save_dataset_info(info, workdir)  # what load_for_inference reads back
  train_split, eval_split = info.train_split, info.eval_split

  def make_train_iterator(*, process_index, process_count):
    return jaxseg_data.make_iterator(
        config.data, split=train_split, global_batch_size=config.batch_size, seed=config.seed,
        train=True, process_index=process_index, process_count=process_count)

  def make_eval_iterator(*, process_index, process_count):
    return jaxseg_data.make_iterator(
        config.data, split=eval_split, global_batch_size=config.batch_size, seed=config.seed,
        train=False, process_index=process_index, process_count=process_count, num_epochs=1)

  results = run(config, workdir, model=model, task=task, input_shape=tuple(info.image_shape),
                make_train_iterator=make_train_iterator, make_eval_iterator=make_eval_iterator)
  _plot_curves(workdir)
  return results


def _plot_curves(workdir: str) -> None:
  """``<workdir>/curves.png`` from ``metrics.jsonl`` (process 0); a failure only warns."""
  if jax.process_index() != 0:
    return
  from jaxseg import viz  # pylint: disable=g-import-not-at-top
  try:
    viz.plot_curves(viz.read_metrics(os.path.join(workdir, 'metrics.jsonl')),
                    os.path.join(workdir, 'curves.png'), title=os.path.abspath(workdir))
  except (OSError, ValueError) as e:  # the run's results stand without the picture
    print(f'warning: could not draw {workdir}/curves.png: {e}')
