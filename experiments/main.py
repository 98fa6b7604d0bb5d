r"""Trains and evaluates one experiment.

Usage::

  python -m experiments.main --config=experiments/configs/<name>.py --workdir=/tmp/run \
      [--config.total_steps=100 --config.optimizer.learning_rate=0.01 ...] [--verbose]

The config is locked: a misspelt key or a value of the wrong type on the command line fails at
start, naming it. A data option the config file does not set but the dataset documents
(``python -c "from jaxseg import data; print(data.describe('cifar10'))"``) may be given as
``--config.data.<option>=<value>``. Every config mistake ends in one line naming the field, the
value and what is allowed, before any dataset is built or anything compiled, with exit code 2
(``--verbose`` shows the traceback). Starting again with the same ``--workdir`` resumes; a
finished run prints its results. See docs/training.md.
"""

import ast
import os
import sys

from experiments import huge_pages

if __name__ == '__main__':
  # First: this may re-execute the binary with malloc on transparent huge pages (glibc reads its
  # tunables at start), and whatever was imported before it would be imported again.
  huge_pages.restart_with_huge_pages()

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from experiments import compilation_cache
from jaxseg import train
from jaxseg.train import platform
from jaxseg.train import sharding

_CONFIG = config_flags.DEFINE_config_file(
  'config', None, 'Path to an experiment config file (experiments/configs/*.py).', lock_config=True
)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Directory for checkpoints, logs and results.')
_CACHE = flags.DEFINE_string(
  'compilation_cache_dir',
  None,
  'Persistent XLA compilation cache (reruns, resumes and sweep trials load compiled programs '
  'instead of compiling). Default: $JAXSEG_COMPILATION_CACHE, else ~/.cache/jaxseg/xla; '
  '"off" disables.',
)
_VERBOSE = flags.DEFINE_bool('verbose', False, 'Show tracebacks of config and setup errors.')
flags.mark_flags_as_required(['config', 'workdir'])

CONFIG_ERROR_EXIT = 2  # a mistake in the config or the command line
RUN_ERROR_EXIT = 1  # the run could not proceed (workdir in use, data missing, NaN, ...)
_DATA_PREFIX = '--config.data.'
_deferred_data_options: list[tuple[str, str]] = []


def _fail(message: str, code: int) -> None:
  print(f'error: {" ".join(str(message).split())}', file=sys.stderr, flush=True)
  sys.exit(code)


def _describe_error(error: BaseException) -> str:
  """One line from config_flags' and ml_collections' multi-line, escaped messages."""
  text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
  text = str(text).replace('\\n', ' ').replace('\\', '')
  if isinstance(error, KeyError):
    text = f'config has no field {text}'
  if 'Attempted [' in text or 'No such file' in text:
    return f'cannot read the config file: {text.split("[Errno 2]")[-1].strip()}'
  return text


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with config mistakes as one line (exit 2) instead of a traceback.

  ``--config.data.X=V`` options are set after the config file is read, so that an option the
  dataset documents but the file leaves out can be added (config_flags would reject it).
  """
  verbose = any(a in ('--verbose', '--verbose=true', '--verbose=True') for a in argv)
  kept = []
  for arg in argv:
    if arg.startswith(_DATA_PREFIX) and '=' in arg:
      key, value = arg[len(_DATA_PREFIX) :].split('=', 1)
      _deferred_data_options.append((key, value))
    else:
      kept.append(arg)
  sys.argv[:] = kept  # config_flags looks for overrides in sys.argv itself
  try:
    return flags.FLAGS(kept)
  except Exception as e:  # pylint: disable=broad-except
    if verbose:
      raise
    if isinstance(e, flags.IllegalFlagValueError) and 'required' in str(e):
      _fail(str(e), CONFIG_ERROR_EXIT)
    _fail(_describe_error(e), CONFIG_ERROR_EXIT)
  return kept


def _parse_value(text: str, current):
  if isinstance(current, str):
    return text
  if isinstance(current, bool):
    if text.lower() in ('true', '1'):
      return True
    if text.lower() in ('false', '0'):
      return False
    raise ValueError(f'must be true or false, got {text!r}')
  try:
    value = ast.literal_eval(text)
  except (ValueError, SyntaxError):
    value = text
  if isinstance(value, list):
    value = tuple(value)
  if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
    value = float(value)
  if current is not None and not isinstance(current, tuple) and type(value) is not type(current):
    raise ValueError(f'must be a {type(current).__name__}, got {text!r}')
  return value


def _apply_data_options(config) -> None:
  """Sets the deferred ``--config.data.X=V``: existing fields by their type, documented options of
  the dataset added; anything else is a one-line error naming what the dataset accepts."""
  from jaxseg.data import registry  # pylint: disable=g-import-not-at-top

  ordered = sorted(_deferred_data_options, key=lambda kv: kv[0] != 'name')  # name first
  for key, text in ordered:
    field = f'config.data.{key}'
    if key in config.data:
      current = config.data[key]
    else:
      try:
        accepted = registry.get_spec(config.data.name).all_options()
      except ValueError as e:
        raise train.ConfigError(str(e)) from None
      if key not in accepted:
        raise train.ConfigError(
          f'{field}: dataset {config.data.name!r} has no option {key!r}; it accepts '
          f'{sorted(accepted)}.'
        )
      current = accepted[key][0]
    try:
      value = _parse_value(text, current)
    except ValueError as e:
      raise train.ConfigError(f'{field}={text!r}: {e}.') from None
    with config.unlocked():
      config.data[key] = value


def _check_before_building(config, workdir: str) -> str:
  """Every check that needs no data and no compilation; ConfigError or ValueError on a mistake."""
  from jaxseg import data  # pylint: disable=g-import-not-at-top
  from jaxseg.data import registry  # pylint: disable=g-import-not-at-top

  _apply_data_options(config)
  workdir = train.check_workdir(workdir)
  train.validate_config(config)
  data.resolve_options(config.data)  # the dataset's options, without building it
  task = registry.get_spec(config.data.name).task
  if config.task != task:
    raise train.ConfigError(
      f'config.task={config.task!r} but dataset {config.data.name!r} is a {task!r} dataset.'
    )
  return workdir


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)  # orbax logs every file it writes at INFO
  config = _CONFIG.value
  try:
    workdir = _check_before_building(config, _WORKDIR.value)
  except (ValueError, TypeError, KeyError, OSError) as e:  # OSError: the config file (lazy)
    if _VERBOSE.value:
      raise
    _fail(_describe_error(e), CONFIG_ERROR_EXIT)
  compilation_cache.enable(_CACHE.value)
  # Before the platform line: listing the devices initialises the backend, after which a
  # multi-process run can no longer join its coordinator.
  try:
    sharding.maybe_initialize_distributed()
  except ValueError as e:  # JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID
    _fail(e, CONFIG_ERROR_EXIT)
  except OSError as e:  # the coordinator's port is taken
    _fail(e, RUN_ERROR_EXIT)
  platform.announce_platform()
  if not sys.stderr.isatty():
    # tfds's build progress bars redraw with terminal escape codes: none in a log file.
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top

    tfds.disable_progress_bar()
  from jaxseg.data import DatasetUnavailableError  # pylint: disable=g-import-not-at-top
  from jaxseg.train import workdir_lock  # pylint: disable=g-import-not-at-top

  try:
    results = train.train_and_evaluate(config, workdir)
  except (
    train.ConfigError,
    workdir_lock.WorkdirLockedError,
    DatasetUnavailableError,
    FileNotFoundError,
    train.NonFiniteError,
  ) as e:
    if _VERBOSE.value:
      raise
    _fail(
      f'{type(e).__name__}: {e}',
      CONFIG_ERROR_EXIT if isinstance(e, train.ConfigError) else RUN_ERROR_EXIT,
    )
  results_path = os.path.join(workdir, train.RESULTS_FILE)
  summary = ', '.join(
    f'{k} {v:.4g}' for k, v in results.items() if isinstance(v, float) and not k.startswith('best_')
  )
  stopped = (
    'stopped (SIGTERM; resume with the same command)' if results.get('preempted') else 'done'
  )
  print(
    f'{stopped}: step {results.get("step")} in {workdir}; results in {results_path}'
    + (f' ({summary})' if summary else ''),
    flush=True,
  )


if __name__ == '__main__':
  app.run(main, flags_parser=_parse_flags)
