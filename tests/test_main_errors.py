"""experiments.main: every config mistake is one line naming field, value and what is allowed,
with exit code 2 and no traceback, before any dataset is built (issue 14, items 7 and 8)."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = '--config=experiments/configs/lenet5_digits.py'


def _main(*args, tmp_path):
  env = dict(
    os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu', JAXSEG_DATA_DIR=str(tmp_path / 'data')
  )
  return subprocess.run(
    [sys.executable, '-m', 'experiments.main', *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


CASES = [
  ((CONFIG, '--config.optimizr.learning_rate=0.1'), r"no field 'optimizr'.*optimizer"),
  ((CONFIG, '--config.optimizer.learning_rate=-1'), r'learning_rate=-1.0 .*\[0, inf\)'),
  pytest.param(
    (CONFIG, '--config.optimizer.momentum=1.5'), r'momentum=1.5 .*\[0, 1\)', marks=pytest.mark.slow
  ),
  pytest.param(
    (CONFIG, '--config.optimizer.name=adam', '--config.optimizer.b2=1.5'),
    r'b2=1.5',
    marks=pytest.mark.slow,
  ),
  pytest.param(
    (CONFIG, '--config.schedule.name=plateau', '--config.schedule.patience=-1'),
    r'patience=-1',
    marks=pytest.mark.slow,
  ),
  pytest.param(
    (CONFIG, '--config.data.crop_padding=40'), r'crop_padding \(40\)', marks=pytest.mark.slow
  ),
  pytest.param(
    (
      CONFIG,
      '--config.schedule.name=warmup_cosine',
      '--config.total_steps=100',
      '--config.schedule.warmup_steps=100',
    ),
    r'warmup_steps=100',
    marks=pytest.mark.slow,
  ),
  pytest.param(
    (CONFIG, '--config.data.pad_mod=reflect'),
    r"no option 'pad_mod'.*pad_mode",
    marks=pytest.mark.slow,
  ),
  pytest.param((CONFIG, '--config.best_mode=maxx'), r'best_mode', marks=pytest.mark.slow),
  pytest.param(
    (CONFIG, '--config.best_metric=miou'), r"best_metric='miou' .*accuracy", marks=pytest.mark.slow
  ),
  pytest.param(
    ('--config=experiments/configs/nope.py',),
    r'cannot read the config file.*nope',
    marks=pytest.mark.slow,
  ),
  pytest.param(
    (CONFIG, '--config.data.pad_mode=reflect', '--config.total_steps=0'),
    r'total_steps=0',
    marks=pytest.mark.slow,
  ),  # pad_mode accepted, then this
]


@pytest.mark.parametrize('args,pattern', CASES)
def test_config_mistake_is_one_line_with_exit_code_2(args, pattern, tmp_path):
  import re  # pylint: disable=g-import-not-at-top

  result = _main(*args, f'--workdir={tmp_path / "run"}', tmp_path=tmp_path)
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert result.returncode == 2, result.stderr
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr
  assert re.search(pattern, lines[0]), lines[0]
  assert not os.path.exists(tmp_path / 'data'), 'no dataset may be built for a config mistake'


@pytest.mark.parametrize(
  'workdir,pattern',
  [pytest.param('', 'must name a directory', marks=pytest.mark.slow), ('FILE', 'is a file')],
)
def test_bad_workdir_is_one_line(workdir, pattern, tmp_path):
  if workdir == 'FILE':
    workdir = str(tmp_path / 'f')
    (tmp_path / 'f').write_text('x')
  result = _main(CONFIG, f'--workdir={workdir}', tmp_path=tmp_path)
  assert result.returncode == 2 and result.stderr.count('\n') == 1, result.stderr
  assert pattern in result.stderr


@pytest.mark.slow
def test_verbose_shows_the_traceback(tmp_path):
  result = _main(
    CONFIG,
    '--config.optimizer.learning_rate=-1',
    '--verbose',
    f'--workdir={tmp_path}',
    tmp_path=tmp_path,
  )
  assert result.returncode != 0 and 'Traceback' in result.stderr


@pytest.mark.slow
def test_finished_run_says_complete_and_done_line_names_results(tmp_path):
  args = (
    CONFIG,
    f'--workdir={tmp_path / "run"}',
    '--config.total_steps=2',
    '--config.batch_size=8',
    '--config.eval_every=2',
    '--config.eval_steps=1',
    '--config.checkpoint_every=2',
    '--config.log_every=2',
    '--config.write_images=False',
    '--config.schedule.warmup_steps=0',
  )
  first = _main(*args, tmp_path=tmp_path)
  assert first.returncode == 0, first.stderr
  results = str(tmp_path / 'run' / 'results.json')
  assert f'done: step 2 in {tmp_path / "run"}; results in {results}' in first.stdout
  assert '\x1b' not in first.stdout + first.stderr  # not a terminal: no escape codes
  assert 'Downloading and preparing' not in first.stdout  # digits are generated offline
  again = _main(*args, tmp_path=tmp_path)
  assert again.returncode == 0
  assert 'is already complete (step 2 of 2)' in again.stderr and 'accuracy' in again.stderr


def test_every_shipped_config_passes_the_checks():
  import glob  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  from jaxseg.train import config_checks  # pylint: disable=g-import-not-at-top

  for path in sorted(glob.glob(os.path.join(ROOT, 'experiments', 'configs', '[a-z]*.py'))):
    name = os.path.basename(path)[:-3]
    if name != 'base':
      config_checks.check_config(
        importlib.import_module(f'experiments.configs.{name}').get_config()
      )


def test_declared_metric_names_match_the_tasks_finalize():
  import ml_collections  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from jaxseg.train import config_checks, tasks  # pylint: disable=g-import-not-at-top
  from jaxseg.metrics import saliency as sal_metrics  # pylint: disable=g-import-not-at-top

  config = ml_collections.ConfigDict({'task': 'classification', 'loss': {'top_k': (1, 5)}})
  sums = {'count': 4.0, 'loss_sum': 1.0, 'top1_correct': 2.0, 'top5_correct': 4.0}
  finalize = tasks.get_task('classification').finalize
  assert set(finalize(None, sums)) == config_checks.task_metric_names(config)
  seg = tasks.get_task('segmentation')
  fake = type('Bound', (), {'class_names': ('a', 'b')})()
  seg_sums = {'confusion_matrix': np.eye(2), 'pixel_count': 2.0, 'loss_sum': 1.0}
  names = {k for k in seg.finalize(fake, seg_sums) if '/' not in k}
  assert names == config_checks.task_metric_names(
    ml_collections.ConfigDict({'task': 'segmentation'})
  )
  sal_sums = {
    f'{m}_{s}': 1.0 for m in sal_metrics.TRAINING_METRICS + ('loss',) for s in ('sum', 'count')
  }
  sal = tasks.get_task('saliency')
  assert set(sal.finalize(None, sal_sums)) == config_checks.task_metric_names(
    ml_collections.ConfigDict({'task': 'saliency'})
  )
