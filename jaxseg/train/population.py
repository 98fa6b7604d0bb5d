"""Populations: ``K`` trials of one config trained as one program.

The members' train states (parameters, batch statistics, optimizer and plateau states, step and
key) are stacked on a leading population axis of length ``K`` and the loop's own train and eval
steps (:mod:`jaxseg.train.steps`) are ``jax.vmap``-ed over it, in the manner of population-based
training (Jaderberg et al., 2017, "Population Based Training of Neural Networks") and of the
vectorised hyperparameter sweeps of Flax/JAX research code. Every member sees the same batches
(one input pipeline, the data order of member 0's seed) and has its own seed (its own
initialisation and dropout keys) and its own optimizer scalars: the per-member values of
:data:`VARIABLE_FIELDS` enter the step as a ``(K,)`` array each, and each member's optimizer is
built inside the ``vmap`` from its values (the role ``optax.inject_hyperparams`` plays for one
run: hyperparameters as traced state rather than constants). The population axis is split over
the devices (a 1-D mesh), so ``d`` devices train ``K = d * m`` members, ``m`` per device.

Only what keeps the program's shapes and structure may vary between members: a field that
changes shapes or the computation (model, width, batch or image size, dataset, schedule kind,
...) is refused by :func:`check_population` before anything is built, naming the field; such
sweeps run one process per trial (``experiments.sweep --mode=processes``).

Layout on disk, as process mode's: each member writes ``metrics.jsonl``, ``tb/``,
``config.json``, ``checkpoints/`` (its own state at every evaluation: the last
``keep_checkpoints`` and the best, so inference reads it as a single run's) and, when it finishes,
``results.json`` in its own directory; the stacked state is checkpointed (Orbax, with the
manifest verification of :mod:`jaxseg.train.checkpoints`) in the population directory, and a
restart resumes from it.
"""

import contextlib
import dataclasses
import json
import os
import time
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxseg.ops import member_conv
from jaxseg.train import checkpoints
from jaxseg.train import crf_eval
from jaxseg.train import logging as run_logging
from jaxseg.train import loop
from jaxseg.train import optimizers
from jaxseg.train import schedules
from jaxseg.train import steps
from jaxseg.train import workdir_lock
from jaxseg.train.state import TrainState, init_train_state, jit_init
from jaxseg.train.tasks import Task

# The config fields whose values may differ between the members of one population.
VARIABLE_FIELDS = (
  'seed',
  'optimizer.learning_rate',
  'optimizer.weight_decay',
  'optimizer.momentum',
  'optimizer.b1',
  'optimizer.b2',
  'optimizer.eps',
)
POPULATION_AXIS = 'population'
MEMBERS_FILE = 'population.json'  # which trial directories a population directory trains
_OPTIMIZER_SCALARS = tuple(f'optimizer.{k}' for k in optimizers.INJECTABLE_HYPERPARAMS)


def _flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat.update(_flatten(value, f'{prefix}{key}.'))
    else:
      flat[f'{prefix}{key}'] = value
  return flat


def varied_fields(configs: Sequence[ml_collections.ConfigDict]) -> dict[str, list[Any]]:
  """Returns ``{dotted field: [value of each config]}`` for the fields the configs disagree on.

  A field present in some configs only counts as varied (its value is ``None`` where absent).

  Example:
    >>> a = ml_collections.ConfigDict({'seed': 0, 'optimizer': {'learning_rate': 0.1}})
    >>> b = ml_collections.ConfigDict({'seed': 0, 'optimizer': {'learning_rate': 0.2}})
    >>> varied_fields([a, b])
    {'optimizer.learning_rate': [0.1, 0.2]}
  """
  flats = [_flatten(c.to_dict()) for c in configs]
  keys = list(dict.fromkeys(k for flat in flats for k in flat))
  varied = {}
  for key in keys:
    values = [flat.get(key) for flat in flats]
    if any(v != values[0] or type(v) is not type(values[0]) for v in values[1:]):
      varied[key] = values
  return varied


def check_population(configs: Sequence[ml_collections.ConfigDict]) -> dict[str, list[Any]]:
  """Checks that ``configs`` can train as one population; returns :func:`varied_fields`.

  Runs on the configs alone, before any dataset is built or anything traced.

  Args:
    configs: one experiment config per member (at least one).

  Returns:
    The fields that vary, each with its per-member values (all in :data:`VARIABLE_FIELDS`).

  Raises:
    ValueError: naming the first field that may not vary (it changes shapes or the program) or
      a feature a population does not support, and saying to use ``--mode=processes``.

  Example:
    >>> a = ml_collections.ConfigDict({'seed': 0, 'model': {'width': 16}})
    >>> b = ml_collections.ConfigDict({'seed': 1, 'model': {'width': 32}})
    >>> check_population([a, b])
    Traceback (most recent call last):
    ...
    ValueError: vectorized sweep: the trials differ in config.model.width ([16, 32]), ...
  """
  if not configs:
    raise ValueError('a population needs at least one member config, got none')
  varied = varied_fields(configs)
  for field, values in varied.items():
    if field not in VARIABLE_FIELDS:
      raise ValueError(
        f'vectorized sweep: the trials differ in config.{field} ({values}), '
        'which changes the shapes or the program of a trial; one population varies only '
        f'{", ".join(VARIABLE_FIELDS)}. Run this sweep with --mode=processes.'
      )
  first = configs[0]
  if 'optimizer.learning_rate' in varied and float(first.schedule.get('end_value', 0.0)):
    raise ValueError(
      f'vectorized sweep: the learning rate varies but config.schedule.end_value='
      f'{first.schedule.end_value} is not 0 (each member scales one schedule by its rate, '
      'exact only when the schedule ends at 0). Set it to 0 or run with --mode=processes.'
    )
  if crf_eval.crf_options(first) is not None:
    raise ValueError(
      'vectorized sweep: config.eval.crf is on (the CRF evaluates one run on the host); '
      'run this sweep with --mode=processes.'
    )
  if first.get('init_from'):
    raise ValueError(
      f'vectorized sweep: config.init_from={first.init_from!r} is not supported for a '
      'population; run this sweep with --mode=processes.'
    )
  return varied


def _structure_config(configs, varied) -> ml_collections.ConfigDict:
  """Member 0's config with the largest weight decay and momentum of any member: which
  transformations the shared optimizer chain holds (a member with 0 computes ``g + 0 * p``)."""
  config = ml_collections.ConfigDict(configs[0].to_dict())
  for field in ('weight_decay', 'momentum'):
    if f'optimizer.{field}' in varied:
      config.optimizer[field] = max(float(c.optimizer[field]) for c in configs)
  return config


@dataclasses.dataclass
class _Program:
  """The population's mesh, shardings and jitted functions."""

  mesh: jax.sharding.Mesh
  members: jax.sharding.NamedSharding
  replicated: jax.sharding.NamedSharding
  hyperparams: dict[str, jax.Array]
  init_state: Callable[[], TrainState]
  abstract_state: Any
  train_step: Callable
  eval_step: Callable
  update_plateau: Callable
  mark_nonfinite: Callable


VECTORIZE = ('auto', 'vmap', 'unroll')


def _strategy(vectorize: str) -> str:
  """``'auto'`` is ``'vmap'`` (see :func:`run_population`)."""
  return 'vmap' if vectorize == 'auto' else vectorize


def _vmapped(member_fn: Callable, in_axes: tuple, mesh: jax.sharding.Mesh) -> Callable:
  """``jax.vmap(member_fn)``, each device mapping its own members (``jax.shard_map``); on CPUs
  traced with one plain convolution per member
  (:func:`jaxseg.ops.member_conv.per_member_convolutions`), not XLA:CPU's grouped one.

  ``shard_map`` keeps every member's work on its device. Left to the partitioner, the step moved
  data between the devices: a grouped convolution all-gathered the members' filters and
  activations, and a member's own convolution (a slice of the member axis) collective-permuted
  them (and with steps dispatched back to back, XLA:CPU's rendezvous timed out and aborted).
  """
  batched = jax.vmap(member_fn, in_axes=in_axes)
  if _convolution_per_member(mesh):
    batched = _traced_with_per_member_convolutions(batched)
  if mesh.devices.size == 1:
    return batched
  spec = jax.sharding.PartitionSpec(POPULATION_AXIS)
  return jax.shard_map(
    batched,
    mesh=mesh,
    in_specs=tuple(spec if a == 0 else jax.sharding.PartitionSpec() for a in in_axes),
    out_specs=spec,
  )


def _convolution_per_member(mesh: jax.sharding.Mesh) -> bool:
  """Whether the members' convolutions run one per member: on CPUs (see ``member_conv``)."""
  return mesh.devices.flat[0].platform == 'cpu'


def _traced_with_per_member_convolutions(fn: Callable) -> Callable:
  """``fn`` traced inside :func:`jaxseg.ops.member_conv.per_member_convolutions`."""

  def traced_with_them(*args):
    with member_conv.per_member_convolutions():
      return fn(*args)

  return traced_with_them


def _unrolled(member_fn: Callable, num: int, *, shared: int) -> Callable:
  """``member_fn`` applied to each of ``num`` members in turn, traced into one program; the
  argument at position ``shared`` (the batch) is the same for all. Outputs are stacked."""

  def all_members(*args):
    outputs = []
    for k in range(num):
      member_args = [a if i == shared else _member_rows(a, k) for i, a in enumerate(args)]
      outputs.append(member_fn(*member_args))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outputs)

  return all_members


def _host_hyperparameters(configs, varied) -> dict[str, np.ndarray]:
  """Each member's seed and varied optimizer scalars, ``(K,)`` each, on the host.

  Only the varied scalars are traced; the others stay Python constants, exactly as in one run.
  """
  names = [f.split('.', 1)[1] for f in varied if f in _OPTIMIZER_SCALARS]
  if 'optimizer.learning_rate' in varied:
    names.append('learning_rate')
  values = {
    name: np.asarray([float(c.optimizer[name]) for c in configs], np.float32) for name in names
  }
  values['seed'] = np.asarray([int(c.seed) for c in configs], np.int32)
  return values


def _member_functions(config, varied, *, model, task, input_shape) -> dict[str, Callable]:
  """One member's ``init(hp)``, ``train(state, hp, batch)``, ``eval(state, batch)`` and
  ``update_plateau(plateau, metric)``, its optimizer built from its hyperparameters ``hp``."""
  dtype = steps.compute_dtype(config.dtype)
  total_updates = config.total_steps // config.optimizer.accumulate_steps
  plateau_tx = schedules.make_plateau(config.schedule)

  def member_optimizer(hp):
    if 'optimizer.learning_rate' in varied:
      # The schedule at rate 1 scaled by the member's rate (check_population: end_value is 0).
      unit = schedules.make_schedule(
        config.schedule, learning_rate=1.0, total_updates=total_updates
      )
      schedule = lambda count: unit(count) * hp['learning_rate']  # noqa: E731
    else:
      schedule = schedules.make_schedule(
        config.schedule,
        learning_rate=float(config.optimizer.learning_rate),
        total_updates=total_updates,
      )
    injected = {k: hp[k] for k in optimizers.INJECTABLE_HYPERPARAMS if k in hp}
    tx = optimizers.make_optimizer(config.optimizer, schedule=schedule, hyperparams=injected)
    return tx, schedule

  def init(hp):
    tx, _ = member_optimizer(hp)
    return init_train_state(
      model=model,
      input_shape=input_shape,
      dtype=dtype,
      seed=hp['seed'],
      tx=tx,
      plateau_tx=plateau_tx,
    )

  def train(state, hp, batch):
    tx, schedule = member_optimizer(hp)
    step = steps.make_train_step(model=model, task=task, tx=tx, config=config, schedule=schedule)
    return step(state, batch)

  def update_plateau(plateau, metric):
    return schedules.update_plateau(plateau_tx, plateau, metric=metric, mode=config.best_mode)

  return {
    'init': init,
    'train': train,
    'eval': steps.make_eval_step(model=model, task=task, config=config),
    'update_plateau': update_plateau,
  }


def _mark_nonfinite(first_bad: jax.Array, finite: jax.Array, step: int) -> jax.Array:
  """The first step at which each member's loss or gradient was NaN/Inf (0: none yet)."""
  return jnp.where((first_bad == 0) & ~finite, step, first_bad)


def _build(
  configs, varied, *, model, task, input_shape, devices: Sequence[jax.Device], vectorize: str
) -> _Program:
  """Builds the mesh over ``devices``, the per-member hyperparameters and the vmapped steps."""
  mesh = jax.sharding.Mesh(np.asarray(devices), (POPULATION_AXIS,))
  members = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(POPULATION_AXIS))
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  # The only upload of the hyperparameters: explicit, and split over the devices as the states.
  hyperparams = jax.device_put(_host_hyperparameters(configs, varied), members)
  member = _member_functions(
    _structure_config(configs, varied),
    varied,
    model=model,
    task=task,
    input_shape=input_shape,
  )
  init = jax.vmap(member['init'])
  # Evaluation is a few batches: vmapped whatever the strategy (an unrolled program of K
  # members compiled in ~4 s at K = 8, more than it runs).
  eval_all = _vmapped(member['eval'], (0, None), mesh)
  if _strategy(vectorize) == 'vmap':
    train_all = _vmapped(member['train'], (0, 0, None), mesh)
  else:
    train_all = _unrolled(member['train'], len(configs), shared=2)
  abstract_state = jax.eval_shape(init, hyperparams)
  state_shardings = jax.tree.map(lambda _: members, abstract_state)
  return _Program(
    mesh=mesh,
    members=members,
    replicated=replicated,
    hyperparams=hyperparams,
    init_state=lambda: jit_init(init, out_shardings=state_shardings)(hyperparams),
    abstract_state=jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=members), abstract_state
    ),
    train_step=jax.jit(
      train_all,
      in_shardings=(state_shardings, members, replicated),
      out_shardings=(state_shardings, members),
      donate_argnums=0,
    ),
    eval_step=jax.jit(
      eval_all,
      in_shardings=(state_shardings, replicated),
      out_shardings=members,
    ),
    update_plateau=jax.jit(
      jax.vmap(member['update_plateau']),
      out_shardings=state_shardings.plateau,
      donate_argnums=0,
    ),
    mark_nonfinite=jax.jit(_mark_nonfinite, out_shardings=members),
  )


def _member_rows(tree: Any, k: int) -> Any:
  return jax.tree.map(lambda x: x[k], tree)


class _Members:
  """Per-member bookkeeping on the host: loggers, checkpointers, first non-finite step.

  Each member's checkpointer holds its own state at every evaluation (the last
  ``keep_checkpoints`` and the best), as a single run's does, so ``experiments.predict`` and
  ``evaluate`` read a member's directory as they read a process-mode trial's, and the best
  evaluation of a resumed population comes from there.
  """

  def __init__(self, configs, workdirs):
    self.configs, self.workdirs = configs, workdirs
    self.loggers, self.ckpts = [], []
    for c, w in zip(configs, workdirs):
      self.loggers.append(run_logging.MetricsLogger(w, total_steps=c.total_steps, console=False))
      self.ckpts.append(
        checkpoints.Checkpointer(
          os.path.join(w, 'checkpoints'),
          keep=c.keep_checkpoints,
          best_metric=c.best_metric,
          best_mode=c.best_mode,
        )
      )
    self.failed: dict[int, str] = {}

  def note_nonfinite(self, first_bad: np.ndarray) -> None:
    for k, bad in enumerate(first_bad):
      if bad and k not in self.failed:
        message = (
          f'NonFiniteError: non-finite loss or gradient at step {int(bad)}; this member stopped '
          'counting (the rest of the population trains on).'
        )
        self.failed[k] = message
        with open(os.path.join(self.workdirs[k], 'log.txt'), 'a') as f:
          f.write(f'error: {message}\n')

  def close(self) -> None:
    for ckpt in self.ckpts:
      ckpt.close()
    for logger in self.loggers:
      logger.close()


def _check_members_file(population_dir: str, workdirs: Sequence[str]) -> None:
  names = [os.path.abspath(w) for w in workdirs]
  path = os.path.join(population_dir, MEMBERS_FILE)
  if os.path.exists(path):
    with open(path) as f:
      previous = json.load(f)['members']
    if previous != names:
      raise ValueError(
        f'{population_dir} holds the checkpoints of another population ({len(previous)} '
        f'members: {previous}); this one has {len(names)}: {names}. Use another directory.'
      )
    return
  with open(path, 'w') as f:
    json.dump({'members': names}, f, indent=1)


def run_population(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str],
  population_dir: str,
  *,
  model: Any,
  task: Task,
  input_shape: tuple[int, int, int],
  make_train_iterator: Callable[..., Iterator[Mapping[str, np.ndarray]]],
  make_eval_iterator: Callable[..., Iterable[Mapping[str, np.ndarray]]],
  devices: Sequence[jax.Device] | None = None,
  vectorize: str = 'auto',
  print_fn: Callable[[str], None] = print,
) -> list[dict[str, Any] | None]:
  """Trains the members ``configs`` as one vmapped program, resuming from ``population_dir``.

  The loop of :func:`jaxseg.train.run` for ``K = len(configs)`` members at once: one batch from
  ``make_train_iterator`` per step for all of them, their states stacked on a leading axis split
  over ``devices``. Each member logs to ``<workdirs[k]>/metrics.jsonl`` (and ``tb/``), saves its
  own state at each evaluation in ``<workdirs[k]>/checkpoints`` and writes
  ``<workdirs[k]>/results.json`` when done, as a single run does; the stacked state is
  checkpointed every ``checkpoint_every`` steps, at each evaluation and on SIGTERM in
  ``<population_dir>/checkpoints``. A member whose loss or gradient turns NaN/Inf is marked
  failed (``log.txt`` in its directory says at which step; no ``results.json``) while the others
  train on.

  Args:
    configs: one config per member; they may differ only in :data:`VARIABLE_FIELDS`.
    workdirs: one directory per member.
    population_dir: where the stacked checkpoints go.
    model: the Flax module (the same for every member).
    task: the bound task.
    input_shape: ``(H, W, C)`` of one image.
    make_train_iterator: as for :func:`jaxseg.train.run`; one iterator feeds every member.
    make_eval_iterator: as for :func:`jaxseg.train.run`.
    devices: the devices to split the population over (default: every local device);
      ``len(configs)`` must be a multiple of their number.
    vectorize: how the one program computes the members: ``'vmap'`` (``jax.vmap`` over the
      population axis; on CPUs with one plain convolution per member where ``vmap`` would make
      a grouped one, which XLA:CPU runs as a dense convolution with a block-diagonal kernel,
      ``K`` times the work; see :mod:`jaxseg.ops.member_conv`), ``'unroll'`` (each member's
      step traced in turn into the same program: the single run's kernels, ``K`` times, and a
      program ``K`` times larger to compile; one device only), or ``'auto'``, which is
      ``'vmap'``. Evaluation is always vmapped. Either way: one compilation, one dispatch per
      step.
    print_fn: receives the population's progress lines.

  Returns:
    One entry per member: its results (as ``jaxseg.train.run`` returns them), or None for a
    member that failed. A run stopped by SIGTERM returns ``{'step': s, 'preempted': True}`` for
    every member.

  Raises:
    ValueError: members that cannot share a program (:func:`check_population`), a population
      size not a multiple of the number of devices, or several processes.
  """
  varied = check_population(configs)
  devices = _checked_devices(configs, workdirs, devices, vectorize)
  with _opened(configs, workdirs, population_dir, print_fn) as (ckpt, members):
    program = _build(
      configs,
      varied,
      model=model,
      task=task,
      input_shape=input_shape,
      devices=devices,
      vectorize=vectorize,
    )
    train_iter = make_train_iterator(process_index=0, process_count=1)
    state, step = _initial_state(program, ckpt, train_iter, print_fn)
    run = _Run(
      config=configs[0],
      program=program,
      members=members,
      ckpt=ckpt,
      train_iter=train_iter,
      task=task,
      make_eval_iterator=make_eval_iterator,
      print_fn=print_fn,
    )
    return _train(run, state, step)


def _checked_devices(configs, workdirs, devices, vectorize: str) -> list[jax.Device]:
  """The devices to split the population over, after the checks that need no files or tracing.

  Raises:
    ValueError: as :func:`run_population` says.
  """
  if len(workdirs) != len(configs):
    raise ValueError(f'workdirs: expected {len(configs)} (one per config), got {len(workdirs)}')
  for config in configs:
    loop.validate_config(config)
  if jax.process_count() > 1:
    raise ValueError(
      f'a population runs in one process, got {jax.process_count()} processes; run a '
      'multi-host sweep with --mode=processes'
    )
  if vectorize not in VECTORIZE:
    raise ValueError(f'vectorize must be one of {VECTORIZE}, got {vectorize!r}')
  devices = list(jax.local_devices() if devices is None else devices)
  if _strategy(vectorize) == 'unroll' and len(devices) > 1:
    raise ValueError(
      f"vectorize='unroll' runs on one device, got {len(devices)}; use 'vmap' (or 'auto')"
    )
  if len(configs) % len(devices):
    raise ValueError(
      f'the population has {len(configs)} members, not a multiple of the {len(devices)} '
      f'devices it is split over; use a multiple of {len(devices)} trials or fewer devices '
      '(experiments.sweep --num_devices).'
    )
  return devices


@contextlib.contextmanager
def _opened(configs, workdirs, population_dir: str, print_fn) -> Iterator[tuple[Any, _Members]]:
  """Locks the population's and the members' directories, then opens the stacked state's
  checkpointer and the members' loggers and checkpointers; closes and unlocks on exit."""
  config = configs[0]
  with contextlib.ExitStack() as stack:
    # Every directory is locked before anything in it is opened for writing.
    for directory in (population_dir, *workdirs):
      os.makedirs(directory, exist_ok=True)
      stack.callback(workdir_lock.WorkdirLock(directory, note=print_fn).acquire().release)
    _check_members_file(population_dir, workdirs)
    ckpt = checkpoints.Checkpointer(
      os.path.join(population_dir, 'checkpoints'),
      keep=config.keep_checkpoints,
      best_metric=config.best_metric,
      best_mode=config.best_mode,
    )
    stack.callback(ckpt.close)
    members = _Members(configs, workdirs)
    stack.callback(members.close)
    yield ckpt, members


def _initial_state(program: _Program, ckpt, train_iter, print_fn) -> tuple[TrainState, int]:
  """The newest verified stacked checkpoint (with the data iterator's position), else a fresh
  population; returns it with its step."""
  latest, state = ckpt.restore_latest(program.abstract_state, train_iter, note=print_fn)
  if latest is None:
    return program.init_state(), 0
  print_fn(f'[population] resumed from checkpoint step {latest} in {ckpt.directory}')
  return state, int(jax.device_get(state.step)[0])


@dataclasses.dataclass
class _Run:
  """What the population's loop works with, besides the state and the step."""

  config: ml_collections.ConfigDict  # member 0's: the fields every member shares
  program: _Program
  members: _Members
  ckpt: checkpoints.Checkpointer
  train_iter: Any
  task: Task
  make_eval_iterator: Callable[..., Iterable[Mapping[str, np.ndarray]]]
  print_fn: Callable[[str], None]


class _Meter:
  """Sums the members' train scalars on the devices between log lines; marks non-finite steps.

  No host round trip per step: the sums and each member's first NaN/Inf step stay on the
  devices until a log line, an evaluation or a checkpoint reads them.
  """

  def __init__(self, run: _Run, step: int):
    self.run = run
    self.first_bad = jax.device_put(
      np.zeros(len(run.members.configs), np.int32), run.program.members
    )
    self.sums, self.count = None, 0
    self.last_step, self.last_time, self.timed = step, time.perf_counter(), False

  def add(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    self.first_bad = self.run.program.mark_nonfinite(self.first_bad, metrics['finite'], step)
    scalars = {k: v for k, v in metrics.items() if k not in ('finite', 'learning_rate')}
    self.sums = scalars if self.sums is None else jax.tree.map(jnp.add, self.sums, scalars)
    self.count += 1
    if not self.timed:  # the first step compiles: rates are timed from its end
      jax.block_until_ready(metrics['loss'])
      self.last_step, self.last_time, self.timed = step, time.perf_counter(), True

  def note_nonfinite(self) -> None:
    """Marks the members whose loss or gradient turned NaN/Inf (read from the devices)."""
    self.run.members.note_nonfinite(jax.device_get(self.first_bad))

  def flush(self, step: int, metrics: Mapping[str, jax.Array]) -> None:
    """Logs each member's means since the last line, its learning rate and the throughput."""
    run, now = self.run, time.perf_counter()
    rate = (step - self.last_step) / max(now - self.last_time, 1e-9)
    sums, rates, bad = jax.device_get((self.sums, metrics.get('learning_rate'), self.first_bad))
    run.members.note_nonfinite(bad)
    batch_size = run.config.batch_size
    for k, logger in enumerate(run.members.loggers):
      logged = {name: float(v[k]) / self.count for name, v in sums.items()}
      if rates is not None:
        logged['learning_rate'] = float(rates[k])
      logger.log(step, 'train', logged, steps_per_sec=rate, images_per_sec=rate * batch_size)
    members = len(run.members.loggers)
    run.print_fn(
      f'[population] step {step}/{run.config.total_steps}: loss per member '
      + ' '.join(f'{v:.4g}' for v in sums['loss'] / self.count)
      + f'; {rate:.3g} steps/s ({rate * members:.3g} member-steps/s)'
    )
    self.sums, self.count, self.last_step, self.last_time = None, 0, step, now


def _evaluate(run: _Run, state: TrainState, step: int) -> tuple[TrainState, list[dict]]:
  """Evaluates every member on the same batches, logs each, checkpoints each member's state in
  its own directory with its metrics, and feeds the plateau schedules."""
  config, program, members = run.config, run.program, run.members
  sums = None
  for i, local in enumerate(run.make_eval_iterator(process_index=0, process_count=1)):
    if 0 <= config.eval_steps <= i:
      break
    batch = jax.device_put(loop._with_valid(local), program.replicated)  # pylint: disable=protected-access
    batch_sums = program.eval_step(state, batch)
    sums = batch_sums if sums is None else jax.tree.map(jnp.add, sums, batch_sums)
  if sums is None:
    raise ValueError('the evaluation split produced no batches')
  sums = jax.device_get(sums)
  metrics = [run.task.finalize(_member_rows(sums, k)) for k in range(len(members.configs))]
  if config.best_metric not in metrics[0]:
    raise ValueError(
      f'config.best_metric={config.best_metric!r} is not an evaluation metric of '
      f'task {run.task.name!r}: {sorted(metrics[0])}'
    )
  # One transfer of the stacked state: slicing it on the devices would dispatch one operation
  # per leaf and member (0.6 s an evaluation for LeNet-5 at K = 8).
  host_state = jax.device_get(state)
  for k, member_metrics in enumerate(metrics):
    members.loggers[k].log(step, 'eval', member_metrics)
    if k not in members.failed:
      member_state = jax.device_put(_member_rows(host_state, k))
      members.ckpts[k].save(step, member_state, run.train_iter, metrics=member_metrics)
  values = [m[config.best_metric] for m in metrics]
  run.print_fn(
    f'[population] step {step} eval: {config.best_metric} per member '
    + ' '.join(f'{v:.4g}' for v in values)
  )
  if config.schedule.name == 'plateau':
    metric = jax.device_put(np.asarray(values, np.float32), program.members)
    state = state.replace(plateau=program.update_plateau(state.plateau, metric))
  return state, metrics


def _train(run: _Run, state: TrainState, step: int) -> list[dict[str, Any] | None]:
  """Trains from ``step`` to ``total_steps`` (or returns the results of a finished population);
  then each member's results."""
  finished = _finished_results(run, step)
  if finished is not None:
    return finished
  for c, w in zip(run.members.configs, run.members.workdirs):
    run_logging.save_config(c, w)
  state, step, eval_metrics, preempted = _train_steps(run, state, step)
  if preempted:
    return [{'step': step, 'preempted': True} for _ in run.members.configs]
  if not eval_metrics:  # restarted at the end without results (killed after the last save)
    state, eval_metrics = _evaluate(run, state, step)
  return _write_results(run, step, eval_metrics)


def _finished_results(run: _Run, step: int) -> list[dict[str, Any]] | None:
  """The saved results of a population that already finished (every member's), else None."""
  workdirs, total = run.members.workdirs, run.config.total_steps
  if step < total or not all(os.path.exists(os.path.join(w, loop.RESULTS_FILE)) for w in workdirs):
    return None
  run.print_fn(f'[population] already complete (step {step} of {total})')
  results = []
  for w in workdirs:
    with open(os.path.join(w, loop.RESULTS_FILE)) as f:
      results.append(json.load(f))
  return results


def _train_steps(run: _Run, state: TrainState, step: int):
  """The loop: a train step for every member, and at their intervals a log line, an evaluation
  and a checkpoint of the stacked state; SIGTERM saves and stops at a step boundary.

  Returns:
    ``(state, step, last evaluation's per-member metrics or [], preempted)``.
  """
  config, program = run.config, run.program
  meter, eval_metrics = _Meter(run, step), []
  with loop._Preemption() as preemption:  # pylint: disable=protected-access
    while step < config.total_steps:
      batch = jax.device_put(next(run.train_iter), program.replicated)
      state, metrics = program.train_step(state, program.hyperparams, batch)
      step += 1
      meter.add(step, metrics)
      last = step == config.total_steps
      evaluate_now, preempted = step % config.eval_every == 0 or last, preemption.reached(step)
      if step % config.log_every == 0 or last:
        meter.flush(step, metrics)
      if evaluate_now:
        # A member that turned NaN since the last log line is marked before it is evaluated, so
        # its NaN state is never checkpointed as its best.
        meter.note_nonfinite()
        state, eval_metrics = _evaluate(run, state, step)
      if evaluate_now or preempted or step % config.checkpoint_every == 0:
        meter.note_nonfinite()
        run.ckpt.save(step, state, run.train_iter)
      if preempted:
        run.print_fn(f'[population] SIGTERM: saved checkpoint step {step}; stopping.')
        return state, step, eval_metrics, True
  meter.note_nonfinite()
  return state, step, eval_metrics, False


def _write_results(run: _Run, step: int, eval_metrics: Sequence[Mapping[str, float]]):
  """Writes each member's ``results.json`` (not a failed member's); returns them (None for a
  failed member)."""
  results = []
  members = run.members
  for k, (c, w) in enumerate(zip(members.configs, members.workdirs)):
    if k in members.failed:
      results.append(None)
      continue
    best_step, best_value = members.ckpts[k].best()
    result = {
      'step': step,
      'num_devices': len(run.program.mesh.devices.flat),
      **eval_metrics[k],
      f'best_{c.best_metric}': best_value,
      'best_step': best_step,
    }
    with open(os.path.join(w, loop.RESULTS_FILE), 'w') as f:
      json.dump(result, f, indent=2)
    results.append(result)
  return results


def train_and_evaluate_population(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str],
  population_dir: str,
  *,
  devices: Sequence[jax.Device] | None = None,
  vectorize: str = 'auto',
  print_fn: Callable[[str], None] = print,
) -> list[dict[str, Any] | None]:
  """Trains the experiments ``configs`` (one model and dataset) as one population.

  :func:`jaxseg.train.train_and_evaluate` for ``K`` members that differ only in
  :data:`VARIABLE_FIELDS`: the dataset and model are built once from ``configs[0]`` (its seed
  orders the data for every member) and :func:`run_population` trains them.

  Args:
    configs: one experiment config per member.
    workdirs: one run directory per member.
    population_dir: where the stacked checkpoints go.
    devices: as for :func:`run_population`.
    vectorize: as for :func:`run_population`.
    print_fn: receives progress lines.

  Returns:
    As :func:`run_population`.

  Example (two learning rates of LeNet-5 on the offline digits set)::

    from experiments.configs import lenet5_digits
    configs = [lenet5_digits.get_config() for _ in range(2)]
    configs[1].optimizer.learning_rate = 1e-3
    train_and_evaluate_population(configs, ['/tmp/a', '/tmp/b'], '/tmp/population')
  """
  from jaxseg.train import inference  # pylint: disable=g-import-not-at-top
  from jaxseg.viz import run_curves  # pylint: disable=g-import-not-at-top

  check_population(configs)
  info, run_kwargs = loop.build_run_parts(configs[0])
  for workdir in workdirs:
    os.makedirs(workdir, exist_ok=True)
    inference.save_dataset_info(info, workdir)

  results = run_population(
    configs,
    workdirs,
    population_dir,
    devices=devices,
    vectorize=vectorize,
    print_fn=print_fn,
    **run_kwargs,
  )
  finished = [w for w, r in zip(workdirs, results) if r is not None and not r.get('preempted')]
  # The members finish together: their curves are drawn on every core (one figure per core).
  for warning in run_curves.draw_runs(finished):
    print_fn(warning)
  return results
