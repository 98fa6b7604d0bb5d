"""Training engine: sharded jitted steps, Orbax checkpoints that resume, logging.

The entry point is :func:`train_and_evaluate`; :func:`run` is the same loop with the model, task
and data injected. See ``docs/training.md``.
"""

from jaxseg.train.config_checks import ConfigError, check_config, check_workdir
from jaxseg.train.inference import InferenceRun, load_for_inference, load_run
from jaxseg.train.loop import (
  RESULTS_FILE,
  NonFiniteError,
  evaluate,
  run,
  train_and_evaluate,
  validate_config,
)
from jaxseg.train.workdir_lock import WorkdirLockedError
from jaxseg.train.optimizers import make_optimizer
from jaxseg.train.schedules import make_plateau, make_schedule, update_plateau
from jaxseg.train.state import TrainState, count_params, create_train_state
from jaxseg.train.tasks import Task, get_task

__all__ = [
  'ConfigError',
  'InferenceRun',
  'RESULTS_FILE',
  'WorkdirLockedError',
  'check_config',
  'check_workdir',
  'load_for_inference',
  'load_run',
  'NonFiniteError',
  'Task',
  'TrainState',
  'count_params',
  'create_train_state',
  'evaluate',
  'get_task',
  'make_optimizer',
  'make_plateau',
  'make_schedule',
  'run',
  'train_and_evaluate',
  'update_plateau',
  'validate_config',
]
