"""Every experiment config resolves and trains one step on tiny settings.

Configs are discovered with glob (``experiments/configs/*.py`` except ``base.py`` and ``_*``).
A config shrinks itself for this test by defining ``get_test_overrides()`` that returns dotted
keys -> values (a tiny model, a synthetic dataset, small images); the test then also sets
``total_steps=1``, a batch of 8 (one example per forced CPU device), one evaluation batch and a
checkpoint. See docs/training.md, "Testing a config".
"""

import glob
import importlib
import os

import ml_collections
import pytest

CONFIG_DIR = os.path.join(
  os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'experiments', 'configs'
)
CONFIGS = sorted(
  os.path.splitext(os.path.basename(p))[0]
  for p in glob.glob(os.path.join(CONFIG_DIR, '*.py'))
  if not os.path.basename(p).startswith(('_', 'base.'))
)

# Datasets built locally in seconds (no download, no manual files); a test run must use one.
OFFLINE_DATASETS = ('digits', 'shapes_segmentation', 'synthetic_saliency')

# Applied to every config before its own get_test_overrides().
ONE_STEP = {
  'total_steps': 1,
  'batch_size': 8,
  'eval_every': 1,
  'checkpoint_every': 1,
  'log_every': 1,
  'eval_steps': 1,
  'write_images': False,
  'optimizer.accumulate_steps': 1,
  'schedule.warmup_steps': 0,
  'init_from': '',
}  # no source run to warm-start from (tests/test_train_init_from.py)


def apply_overrides(config: ml_collections.ConfigDict, overrides: dict) -> None:
  """Sets dotted keys on a locked config; unknown keys fail, as on the command line."""
  for key, value in overrides.items():
    *parents, leaf = key.split('.')
    target = config
    for p in parents:
      target = target[p]
    target[leaf] = value


def _load(name):
  return importlib.import_module(f'experiments.configs.{name}')


@pytest.fixture(scope='session')
def data_dir(tmp_path_factory):
  """One dataset cache per session: each synthetic dataset is built once for all configs."""
  return str(tmp_path_factory.mktemp('config_test_data'))


def test_configs_are_discovered():
  assert 'base' not in CONFIGS


@pytest.mark.parametrize('name', CONFIGS)
def test_config_resolves_with_documented_run(name):
  module = _load(name)
  config = module.get_config()
  assert isinstance(config, ml_collections.ConfigDict)
  config.lock()
  doc = (module.get_config.__doc__ or '') + (module.__doc__ or '')
  assert 'experiments.main' in doc, f'{name}: the docstring must give the command to run it'
  assert config.model.name and config.data.name, f'{name}: model.name and data.name must be set'
  assert config.task in ('classification', 'segmentation', 'saliency')


# Slow: 6-110 s per config, mostly XLA compilation of init, train and eval steps on 8 forced
# devices (GoogLeNet, which has no width option, ~100 s); 21 configs took 540 s on 2 shared cores.
@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_config_trains_one_step_on_tiny_settings(name, data_dir, tmp_path):
  from jaxseg import train  # pylint: disable=g-import-not-at-top

  module = _load(name)
  config = module.get_config()
  config.lock()
  apply_overrides(config, ONE_STEP)
  config.data.data_dir = data_dir
  if hasattr(module, 'get_test_overrides'):
    apply_overrides(config, module.get_test_overrides())
  if hasattr(module, 'make_test_data'):  # a config of the user's own folders writes tiny ones
    apply_overrides(config, module.make_test_data(str(tmp_path / 'test_data')))
  elif config.data.name not in OFFLINE_DATASETS:
    pytest.fail(
      f'{name}: data.name={config.data.name!r} needs a download or manual files. Define '
      f'get_test_overrides() in the config selecting one of {OFFLINE_DATASETS} and a '
      'tiny model (docs/training.md, "Testing a config").'
    )
  if config.schedule.name == 'step':
    # A one-step run cannot hold the step schedule's boundaries (config_checks wants them inside
    # the run); schedules have their own tests (test_train_schedules.py).
    config.schedule.name = 'constant'
  result = train.train_and_evaluate(config, str(tmp_path))
  assert result['step'] == 1
  assert config.best_metric in result
  assert os.path.isdir(tmp_path / 'checkpoints' / '1')
