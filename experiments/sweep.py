r"""Runs a hyperparameter sweep: one process per trial, or every trial in one vmapped program.

Usage::

  python -m experiments.sweep --sweep=experiments/sweeps/<name>.py --workdir=/tmp/sweep \
      [--mode=processes|vectorized] [--devices_per_trial=1] [--parallel=8] [--accelerator=gpu]

``--mode=processes`` (the default) runs one ``experiments.main`` process per trial, on disjoint
devices. ``--mode=vectorized`` trains all the trials as one population in this process
(:mod:`jaxseg.train.population`): their states stacked on a leading axis split over the devices,
the train and eval steps ``vmap``-ed over it, one input pipeline for all (the data order of the
first trial's seed). It needs trials that differ only in a seed and optimizer scalars (learning
rate, weight decay, momentum, ``b1``, ``b2``, ``eps``); a sweep over anything that changes shapes
(model width, batch or image size, model, dataset) is refused before anything is built, naming
the field. The trials' directories, ``metrics.jsonl``, ``results.json`` and ``summary.csv`` are
laid out as in process mode; the stacked checkpoints live in ``<workdir>/population``.

A sweep file defines ``get_sweep()`` returning a :class:`Sweep`: the base config file and a list
of override dicts (see :func:`product` and :func:`chain`). Each trial runs
``python -m experiments.main --config=<base> --workdir=<workdir>/<trial> --config.<key>=<value>``
with its own devices (``CUDA_VISIBLE_DEVICES``; ``TPU_VISIBLE_CHIPS`` and friends; on CPU a forced
host-device count). Running the sweep again skips finished trials (their ``results.json``) and
resumes interrupted ones from their checkpoints. At the end ``<workdir>/summary.csv`` holds each
trial's overrides, status and final/best metrics, and is printed.
"""

import csv
import dataclasses
import glob
import hashlib
import importlib.util
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from typing import Any, Iterable, Mapping, Sequence

from experiments import huge_pages

if __name__ == '__main__':
  # First: this may re-execute the binary with malloc on transparent huge pages (glibc reads its
  # tunables at start), and whatever was imported before it would be imported again.
  huge_pages.restart_with_huge_pages()

from absl import app
from absl import flags

RESULTS_FILE = 'results.json'  # written by jaxseg.train.loop when a run finishes


def _define_flags() -> None:
  """Defines the binary's flags (only when run as a program, so sweep files can import this)."""
  flags.DEFINE_string('sweep', None, 'Path to a sweep file defining get_sweep().')
  flags.DEFINE_string('workdir', None, 'Sweep directory; each trial gets a subdirectory.')
  flags.DEFINE_integer('devices_per_trial', 1, 'Accelerators per trial.')
  flags.DEFINE_integer('parallel', 0, 'Trials at once; 0: as many as the devices allow (1 on CPU).')
  flags.DEFINE_enum(
    'accelerator', 'auto', ['auto', 'cpu', 'gpu', 'tpu'], 'Which devices to split between trials.'
  )
  flags.DEFINE_integer(
    'num_devices', 0, 'Local accelerators; 0: detect. Vectorized mode: how many to split over.'
  )
  flags.DEFINE_enum(
    'mode',
    'processes',
    ['processes', 'vectorized'],
    'processes: one experiments.main process per trial. vectorized: every trial in one vmapped '
    'program (trials may differ only in the seed and optimizer scalars).',
  )
  flags.DEFINE_enum(
    'vectorize',
    'auto',
    ['auto', 'vmap', 'unroll'],
    'Vectorized mode: vmap (batched kernels; on a CPU one plain convolution per member), '
    'unroll (each member in turn in one program, one device), auto (vmap).',
  )
  flags.DEFINE_string(
    'compilation_cache_dir',
    None,
    'Vectorized mode: persistent XLA compilation cache (as experiments.main). Default: '
    '$JAXSEG_COMPILATION_CACHE, else ~/.cache/jaxseg/xla; "off" disables.',
  )
  flags.mark_flags_as_required(['sweep', 'workdir'])


@dataclasses.dataclass(frozen=True)
class Sweep:
  """A base config file and the overrides of each trial.

  Attributes:
    base_config: path of the config file (relative to the repository root or absolute).
    trials: one dict per trial mapping dotted config keys to values, e.g.
      ``{'optimizer.learning_rate': 0.1, 'seed': 1}``.
  """

  base_config: str
  trials: Sequence[Mapping[str, Any]]


def product(*axes: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
  """Returns the Cartesian product of parameter axes.

  Each argument maps keys to equally long value lists that vary *together* (a zipped axis).

  Example:
    >>> product({'optimizer.learning_rate': [0.1, 0.01]}, {'seed': [0, 1]})
    [{'optimizer.learning_rate': 0.1, 'seed': 0}, {'optimizer.learning_rate': 0.1, 'seed': 1},
     {'optimizer.learning_rate': 0.01, 'seed': 0}, {'optimizer.learning_rate': 0.01, 'seed': 1}]
  """
  zipped_axes = []
  for axis in axes:
    lengths = {len(v) for v in axis.values()}
    if len(lengths) != 1:
      raise ValueError(f'product: the lists of one axis must have equal lengths, got {dict(axis)}')
    zipped_axes.append([dict(zip(axis, values)) for values in zip(*axis.values())])
  return [
    dict(kv for part in combo for kv in part.items()) for combo in itertools.product(*zipped_axes)
  ]


def chain(*trial_lists: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Concatenates lists of trials."""
  return [dict(t) for trials in trial_lists for t in trials]


def load_sweep(path: str) -> Sweep:
  """Imports a sweep file and returns its ``get_sweep()``."""
  spec = importlib.util.spec_from_file_location('_jaxseg_sweep', path)
  if spec is None or not os.path.exists(path):
    raise ValueError(f'--sweep: no such file {path!r}')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  result = module.get_sweep()
  # Compared by fields, not class: run as a program this module is __main__, while the sweep
  # file imports experiments.sweep, a second copy of the class.
  if not (hasattr(result, 'base_config') and getattr(result, 'trials', None)):
    raise ValueError(f'{path}: get_sweep() must return a Sweep with at least one trial')
  sweep = Sweep(base_config=result.base_config, trials=list(result.trials))
  # The base config may be given relative to the current directory, the repository root or the
  # sweep file; trials run from the repository root, so pass it on as an absolute path.
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for root in (os.getcwd(), repo_root, os.path.dirname(os.path.abspath(path))):
    candidate = os.path.join(root, sweep.base_config)
    if os.path.exists(candidate):
      return dataclasses.replace(sweep, base_config=os.path.abspath(candidate))
  raise ValueError(f'{path}: base_config {sweep.base_config!r} not found')


def format_override(value: Any) -> str:
  """Formats a value as ``config_flags`` parses it on the command line."""
  if isinstance(value, str):
    return value
  return repr(tuple(value)) if isinstance(value, list) else repr(value)


def trial_name(index: int, overrides: Mapping[str, Any]) -> str:
  """Returns ``'003_lr=0.1_seed=1'``: the index plus a filesystem-safe digest of the overrides."""
  parts = [f'{k.split(".")[-1]}={format_override(v)}' for k, v in overrides.items()]
  slug = re.sub(r'[^A-Za-z0-9=._-]+', '-', '_'.join(parts))[:80]
  return f'{index:03d}_{slug}' if slug else f'{index:03d}'


def detect_accelerator() -> tuple[str, int]:
  """Returns ``(kind, count)`` of local accelerators without initialising JAX in this process."""
  tpus = glob.glob('/dev/accel*') + glob.glob('/dev/vfio/[0-9]*')
  if tpus:
    return 'tpu', len(tpus)
  try:
    listing = subprocess.run(['nvidia-smi', '-L'], capture_output=True, text=True, timeout=30)
    gpus = [line for line in listing.stdout.splitlines() if line.startswith('GPU ')]
    if gpus:
      return 'gpu', len(gpus)
  except (OSError, subprocess.SubprocessError):
    pass
  return 'cpu', 0


def trial_env(
  accelerator: str, device_ids: Sequence[int], base_env: Mapping[str, str] | None = None
) -> dict[str, str]:
  """Returns the environment that confines a trial to ``device_ids``.

  Args:
    accelerator: ``'gpu'`` (``CUDA_VISIBLE_DEVICES``), ``'tpu'`` (``TPU_VISIBLE_CHIPS`` with
      per-process bounds; chip counts 1, 2, 4 or 8) or ``'cpu'`` (``JAX_PLATFORMS=cpu`` and
      ``--xla_force_host_platform_device_count=len(device_ids)``).
    device_ids: local device indices for this trial.
    base_env: the environment to start from (default ``os.environ``).

  Returns:
    A new environment dict.

  Example:
    >>> trial_env('gpu', [2, 3], {})['CUDA_VISIBLE_DEVICES']
    '2,3'
  """
  env = dict(os.environ if base_env is None else base_env)
  ids = ','.join(str(i) for i in device_ids)
  if accelerator == 'gpu':
    env['CUDA_VISIBLE_DEVICES'] = ids
  elif accelerator == 'tpu':
    bounds = {1: '1,1,1', 2: '1,2,1', 4: '2,2,1', 8: '2,4,1'}
    if len(device_ids) not in bounds:
      raise ValueError(f'--devices_per_trial on TPU must be 1, 2, 4 or 8, got {len(device_ids)}')
    env.update(
      TPU_VISIBLE_CHIPS=ids,
      TPU_CHIPS_PER_PROCESS_BOUNDS=bounds[len(device_ids)],
      TPU_PROCESS_BOUNDS='1,1,1',
      TPU_PROCESS_PORT=str(8476 + device_ids[0]),
      TPU_PROCESS_ADDRESSES=f'localhost:{8476 + device_ids[0]}',
      CLOUD_TPU_TASK_ID='0',
    )
  elif accelerator == 'cpu':
    flags_ = re.sub(r'--xla_force_host_platform_device_count=\d+', '', env.get('XLA_FLAGS', ''))
    env['XLA_FLAGS'] = f'{flags_} --xla_force_host_platform_device_count={len(device_ids)}'.strip()
    env['JAX_PLATFORMS'] = 'cpu'
  else:
    raise ValueError(f"accelerator must be 'cpu', 'gpu' or 'tpu', got {accelerator!r}")
  return env


def device_slots(num_devices: int, devices_per_trial: int) -> list[list[int]]:
  """Splits ``range(num_devices)`` into disjoint groups of ``devices_per_trial``.

  Example:
    >>> device_slots(8, 4)
    [[0, 1, 2, 3], [4, 5, 6, 7]]
  """
  if devices_per_trial < 1 or num_devices < devices_per_trial:
    raise ValueError(
      f'--devices_per_trial={devices_per_trial} must be in [1, {num_devices}] (the local devices)'
    )
  return [
    list(range(s, s + devices_per_trial))
    for s in range(0, num_devices - devices_per_trial + 1, devices_per_trial)
  ]


@dataclasses.dataclass
class Trial:
  index: int
  overrides: Mapping[str, Any]
  workdir: str

  @property
  def finished(self) -> bool:
    return os.path.exists(os.path.join(self.workdir, RESULTS_FILE))

  def command(self, base_config: str) -> list[str]:
    return [
      sys.executable,
      '-m',
      'experiments.main',
      f'--config={base_config}',
      f'--workdir={self.workdir}',
    ] + [f'--config.{k}={format_override(v)}' for k, v in self.overrides.items()]


def _latest_metrics(trial_workdir: str) -> str:
  """``step S: loss L[, eval METRIC M]`` from the end of a trial's ``metrics.jsonl``, or ''."""
  path = os.path.join(trial_workdir, 'metrics.jsonl')
  try:
    with open(path, 'rb') as f:
      f.seek(max(0, os.path.getsize(path) - 8192))
      rows = [
        json.loads(line)
        for line in f.read().decode('utf-8', 'replace').splitlines()[1:]
        if line.strip().startswith('{')
      ]
  except (OSError, ValueError):
    return ''
  if not rows:
    return ''
  last = rows[-1]
  shown = [
    f'{k} {v:.4g}'
    for k, v in last.items()
    if k not in ('step', 'split', 'time', 'steps_per_sec', 'images_per_sec')
    and isinstance(v, (int, float))
  ][:3]
  return f'step {last["step"]} {last.get("split", "")}: ' + ', '.join(shown)


def _format_seconds(seconds: float) -> str:
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f'{hours}h{minutes:02d}m' if hours else f'{minutes}m{secs:02d}s'


class _Stop:
  """SIGTERM/SIGINT to the sweep: forward SIGTERM to every running trial (each saves a checkpoint
  and stops at a step boundary), start nothing new, wait for them; a second signal kills them."""

  def __init__(self):
    self.signal = None
    self.running: dict[int, subprocess.Popen] = {}
    self._previous = {}

  def __enter__(self) -> '_Stop':
    for sig in (signal.SIGTERM, signal.SIGINT):
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc_info) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)

  def _handle(self, signum, frame) -> None:
    del frame
    first = self.signal is None
    self.signal = self.signal or signum
    name = signal.Signals(signum).name
    pids = [p.pid for p in self.running.values() if p.poll() is None]
    if first:
      print(
        f'[sweep] {name}: forwarding SIGTERM to the running trial(s) {pids}; waiting for '
        'their checkpoints (send it again to kill them)',
        flush=True,
      )
      forwarded = signal.SIGTERM
    else:
      print(f'[sweep] {name} again: killing the trial(s) {pids}', flush=True)
      forwarded = signal.SIGKILL
    for process in self.running.values():
      if process.poll() is None:
        process.send_signal(forwarded)


def _ignore_sigint() -> None:
  # Trials share the terminal's process group, so Ctrl-C would reach them as KeyboardInterrupt
  # (no checkpoint); the sweep forwards SIGTERM instead, which the training loop handles.
  signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_sweep(
  sweep: Sweep,
  workdir: str,
  *,
  accelerator: str,
  slots: Sequence[Sequence[int]],
  repo_root: str,
  status_every: float = 30.0,
) -> list[dict[str, Any]]:
  """Runs every unfinished trial, at most ``len(slots)`` at once, and returns the summary rows.

  The console names each trial ``k/N``, prints each running trial's latest logged metrics every
  ``status_every`` seconds, and an ETA from the trials finished so far. SIGTERM or Ctrl-C is
  forwarded to the running trials as SIGTERM (each saves a checkpoint and stops); the sweep waits
  for them, starts nothing new and returns; running it again resumes.

  Args:
    sweep: the sweep.
    workdir: the sweep directory.
    accelerator: ``'cpu'``, ``'gpu'`` or ``'tpu'``.
    slots: disjoint device-id groups; each running trial holds one.
    repo_root: working directory of the trial processes (so ``experiments`` imports).
    status_every: seconds between status lines.

  Returns:
    One dict per trial: ``trial``, ``status`` (``done``/``failed``/``stopped``), the overrides,
    and the trial's ``results.json`` entries.
  """
  os.makedirs(workdir, exist_ok=True)
  trials = [
    Trial(i, o, os.path.join(workdir, trial_name(i, o))) for i, o in enumerate(sweep.trials)
  ]
  total = len(trials)
  label = lambda t: f'trial {t.index + 1}/{total} {os.path.basename(t.workdir)}'  # noqa: E731
  pending = [t for t in trials if not t.finished]
  for t in trials:
    if t.finished:
      print(f'[sweep] {label(t)}: finished earlier, skipped', flush=True)
  free = [list(s) for s in slots]
  running: dict[int, tuple[subprocess.Popen, list[int], Any, float]] = {}
  durations, last_status = [], time.time()
  with _Stop() as stop:
    while (pending and stop.signal is None) or running:
      while pending and free and stop.signal is None:
        trial, slot = pending.pop(0), free.pop(0)
        os.makedirs(trial.workdir, exist_ok=True)
        log = open(os.path.join(trial.workdir, 'log.txt'), 'a')
        resumed = os.path.isdir(os.path.join(trial.workdir, 'checkpoints'))
        process = subprocess.Popen(
          trial.command(sweep.base_config),
          cwd=repo_root,
          env=trial_env(accelerator, slot),
          stdout=log,
          stderr=subprocess.STDOUT,
          preexec_fn=_ignore_sigint,
        )
        print(
          f'[sweep] {label(trial)}: {"resuming" if resumed else "starting"} on '
          f'{accelerator} {slot} (pid {process.pid})',
          flush=True,
        )
        running[trial.index] = (process, slot, log, time.time())
        stop.running[trial.index] = process
      time.sleep(0.2)
      for index, (process, slot, log, started) in list(running.items()):
        if process.poll() is None:
          continue
        log.close()
        free.append(slot)
        del running[index]
        del stop.running[index]
        trial = trials[index]
        if trial.finished:
          durations.append(time.time() - started)
          status = 'done'
        elif stop.signal is not None:
          status = 'stopped (checkpoint saved; run the sweep again to resume)'
        else:
          status = f'failed (exit {process.returncode}; see {trial.workdir}/log.txt)'
        left = len(pending) + len(running)
        eta = ''
        if durations and left and stop.signal is None:
          parallel = max(1, min(len(slots), left))
          eta = f'; ETA {_format_seconds(sum(durations) / len(durations) * left / parallel)}'
        latest = _latest_metrics(trial.workdir)
        print(
          f'[sweep] {label(trial)}: {status}'
          + (f' ({latest})' if latest else '')
          + f'; {left} trial(s) left{eta}',
          flush=True,
        )
      if running and time.time() - last_status >= status_every:
        last_status = time.time()
        for index in running:
          latest = _latest_metrics(trials[index].workdir)
          print(
            f'[sweep] {label(trials[index])}: running' + (f', {latest}' if latest else ''),
            flush=True,
          )
  rows = [_summary_row(t) for t in trials]
  if stop.signal is not None:
    for row in rows:
      if row['status'] != 'done':
        row['status'] = 'stopped'
  return rows


def load_trial_config(base_config: str, overrides: Mapping[str, Any]):
  """Returns the base config file's ``get_config()`` with a trial's overrides set (locked).

  As ``experiments.main --config=<base> --config.<key>=<value>`` builds it: a key the config does
  not have, or a value of the wrong type, raises naming the key.

  Raises:
    ValueError: an unknown key or a value of the wrong type.
  """
  spec = importlib.util.spec_from_file_location('_jaxseg_trial_config', base_config)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.lock()
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    target = config
    try:
      for part in parents:
        target = target[part]
      target[leaf] = tuple(value) if isinstance(value, list) else value
    except (KeyError, AttributeError, TypeError) as e:
      raise ValueError(f'trial override {key}={value!r}: {e}') from None
  return config


def _population_dir_name(trials: Sequence[Trial], pending: Sequence[Trial]) -> str:
  """``population`` for the whole sweep; a subset (the trials left after a failure, or after
  some ran in process mode) gets its own directory, named after its trials."""
  if len(pending) == len(trials):
    return 'population'
  digest = hashlib.sha1('\n'.join(t.workdir for t in pending).encode()).hexdigest()[:8]
  return f'population-{len(pending)}of{len(trials)}-{digest}'


def run_vectorized(
  sweep: Sweep, workdir: str, *, num_devices: int = 0, vectorize: str = 'auto', print_fn=print
) -> list[dict[str, Any]]:
  """Trains the sweep's unfinished trials as one population and returns the summary rows.

  The members' configs are built and checked (:func:`jaxseg.train.population.check_population`)
  before JAX builds or traces anything. Finished trials (their ``results.json``) are skipped; the
  rest resume from ``<workdir>/population`` when it holds their checkpoints (a subset of the
  trials, such as the ones left after a member failed, trains in a population directory of its
  own, ``population-<n>of<N>-<digest>``).

  Args:
    sweep: the sweep.
    workdir: the sweep directory.
    num_devices: how many local devices to split the population over (0: all).
    vectorize: ``'auto'``, ``'vmap'`` or ``'unroll'``
      (:func:`jaxseg.train.population.run_population`).
    print_fn: receives progress lines.

  Returns:
    As :func:`run_sweep`.

  Raises:
    ValueError: trials that cannot share one program, naming the field that differs.
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jaxseg.train import population  # pylint: disable=g-import-not-at-top

  trials = [
    Trial(i, o, os.path.join(workdir, trial_name(i, o))) for i, o in enumerate(sweep.trials)
  ]
  configs = [load_trial_config(sweep.base_config, t.overrides) for t in trials]
  population.check_population(configs)  # every trial, so a refusal does not depend on progress
  pending = [t for t in trials if not t.finished]
  for t in trials:
    if t.finished:
      print_fn(
        f'[sweep] trial {t.index + 1}/{len(trials)} {os.path.basename(t.workdir)}: '
        'finished earlier, skipped'
      )
  if pending:
    devices = jax.local_devices()
    if num_devices:
      if num_devices > len(devices):
        raise ValueError(f'--num_devices={num_devices} but only {len(devices)} devices are here')
      devices = devices[:num_devices]
    print_fn(
      f'[sweep] training {len(pending)} trial(s) as one population on {len(devices)} '
      f'{devices[0].platform} device(s)'
    )
    results = population.train_and_evaluate_population(
      [configs[t.index] for t in pending],
      [t.workdir for t in pending],
      os.path.join(workdir, _population_dir_name(trials, pending)),
      devices=devices,
      vectorize=vectorize,
      print_fn=print_fn,
    )
    if any(r and r.get('preempted') for r in results):
      print_fn('[sweep] stopped (checkpoint saved); run the sweep again to resume')
      return [
        {**row, 'status': 'stopped'} if row['status'] != 'done' else row
        for row in (_summary_row(t) for t in trials)
      ]
  return [_summary_row(t) for t in trials]


def _summary_row(trial: Trial) -> dict[str, Any]:
  row = {'trial': os.path.basename(trial.workdir), 'status': 'done' if trial.finished else 'failed'}
  row.update({k: format_override(v) for k, v in trial.overrides.items()})
  if trial.finished:
    with open(os.path.join(trial.workdir, RESULTS_FILE)) as f:
      row.update(json.load(f))
  return row


def write_summary(rows: Sequence[Mapping[str, Any]], path: str) -> str:
  """Writes the rows as CSV (columns in first-seen order) and returns the CSV text."""
  columns = list(dict.fromkeys(k for row in rows for k in row))
  buffer = io.StringIO()
  writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator='\n')
  writer.writeheader()
  writer.writerows(rows)
  with open(path, 'w') as f:
    f.write(buffer.getvalue())
  return buffer.getvalue()


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  sweep = load_sweep(args.sweep)
  if args.mode == 'vectorized':
    _main_vectorized(sweep, args)
    return
  accelerator, detected = args.accelerator, 0
  if accelerator == 'auto':
    accelerator, detected = detect_accelerator()
  if accelerator == 'cpu':
    # Host "devices" are forced per trial; by default trials run one after another.
    num_devices = args.devices_per_trial * max(args.parallel, 1)
  else:
    num_devices = args.num_devices or detected or detect_accelerator()[1]
  slots = device_slots(num_devices, args.devices_per_trial)
  if args.parallel:
    slots = slots[: args.parallel]
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  rows = run_sweep(sweep, args.workdir, accelerator=accelerator, slots=slots, repo_root=repo_root)
  text = write_summary(rows, os.path.join(args.workdir, 'summary.csv'))
  print(text, end='')
  if any(row['status'] != 'done' for row in rows):
    sys.exit(1)


def _sigint_as_sigterm(signum, frame) -> None:
  """Ctrl-C in vectorized mode: the first saves a checkpoint and stops at a step boundary (the
  population's SIGTERM handling), a second one interrupts at once."""
  del signum, frame
  print('[sweep] SIGINT: saving a checkpoint and stopping (Ctrl-C again to abort)', flush=True)
  signal.signal(signal.SIGINT, signal.default_int_handler)
  os.kill(os.getpid(), signal.SIGTERM)


def _main_vectorized(sweep: Sweep, args) -> None:
  from absl import logging  # pylint: disable=g-import-not-at-top

  from experiments import compilation_cache  # pylint: disable=g-import-not-at-top

  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  os.makedirs(args.workdir, exist_ok=True)
  compilation_cache.enable(args.compilation_cache_dir)
  signal.signal(signal.SIGINT, _sigint_as_sigterm)
  try:
    rows = run_vectorized(
      sweep, args.workdir, num_devices=args.num_devices, vectorize=args.vectorize
    )
  except ValueError as e:
    print(f'error: {" ".join(str(e).split())}', file=sys.stderr, flush=True)
    sys.exit(2)
  text = write_summary(rows, os.path.join(args.workdir, 'summary.csv'))
  print(text, end='')
  if any(row['status'] != 'done' for row in rows):
    sys.exit(1)


if __name__ == '__main__':
  _define_flags()
  app.run(main)
