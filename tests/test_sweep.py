"""experiments/sweep.py: trial expansion, device slots, and a killed-and-restarted sweep."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

from experiments import sweep
from tests import _digits_run_files as files

REPO = files.REPO


def test_product_varies_zipped_axes_together():
  trials = sweep.product({'a': [1, 2], 'b': ['x', 'y']}, {'seed': [0, 1, 2]})
  assert len(trials) == 6
  assert trials[0] == {'a': 1, 'b': 'x', 'seed': 0}
  assert trials[5] == {'a': 2, 'b': 'y', 'seed': 2}
  with pytest.raises(ValueError, match='equal lengths'):
    sweep.product({'a': [1, 2], 'b': [1]})


def test_device_slots_are_disjoint_groups():
  assert sweep.device_slots(8, 1) == [[i] for i in range(8)]
  assert sweep.device_slots(8, 4) == [[0, 1, 2, 3], [4, 5, 6, 7]]
  assert sweep.device_slots(6, 4) == [[0, 1, 2, 3]]
  with pytest.raises(ValueError, match='devices_per_trial=9'):
    sweep.device_slots(8, 9)


def test_trial_env_confines_devices():
  assert sweep.trial_env('gpu', [4, 5], {})['CUDA_VISIBLE_DEVICES'] == '4,5'
  tpu = sweep.trial_env('tpu', [2, 3], {})
  assert tpu['TPU_VISIBLE_CHIPS'] == '2,3' and tpu['TPU_CHIPS_PER_PROCESS_BOUNDS'] == '1,2,1'
  cpu = sweep.trial_env('cpu', [0, 1, 2], {'XLA_FLAGS': '--xla_force_host_platform_device_count=8'})
  assert cpu['XLA_FLAGS'] == '--xla_force_host_platform_device_count=3'
  assert cpu['JAX_PLATFORMS'] == 'cpu'


def test_command_line_overrides_format():
  trial = sweep.Trial(
    0,
    {'optimizer.learning_rate': 0.1, 'model.name': 'lenet5', 'schedule.boundaries': [10, 20]},
    '/w/t',
  )
  assert trial.command('c.py')[-3:] == [
    '--config.optimizer.learning_rate=0.1',
    '--config.model.name=lenet5',
    '--config.schedule.boundaries=(10, 20)',
  ]


def _write_files(tmp_path, data_dir):
  config = files.write_config(
    tmp_path / 'base_config.py',
    data_dir,
    {
      'total_steps': 16,
      'batch_size': 16,
      'checkpoint_every': 4,
      'eval_every': 40,
      'log_every': 10,
      'eval_steps': 2,
    },
    base='base',
  )
  return files.write_sweep(
    tmp_path / 'sweep_file.py',
    config,
    "sweep.product({'optimizer.learning_rate': [0.01, 0.05, 0.1]})",
  )


@pytest.mark.slow
def test_sweep_of_three_with_one_killed_and_resumed(tmp_path):
  data_dir = tmp_path / 'data'
  files.build_digits(data_dir)
  sweep_file = _write_files(tmp_path, data_dir)
  workdir = tmp_path / 'sweep'
  command = [
    sys.executable,
    '-m',
    'experiments.sweep',
    f'--sweep={sweep_file}',
    f'--workdir={workdir}',
    '--accelerator=cpu',
    '--devices_per_trial=2',
  ]
  env = dict(os.environ, PYTHONPATH=REPO)

  # First attempt: kill the sweep and its running trial once trial 1 has a checkpoint.
  process = subprocess.Popen(
    command,
    cwd=REPO,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    start_new_session=True,
  )
  names = [
    sweep.trial_name(i, {'optimizer.learning_rate': lr}) for i, lr in enumerate([0.01, 0.05, 0.1])
  ]
  checkpoints = workdir / names[1] / 'checkpoints'
  deadline = time.time() + 240
  while time.time() < deadline and process.poll() is None:
    if checkpoints.exists() and any(d.isdigit() for d in os.listdir(checkpoints)):
      break
    time.sleep(0.02)
  assert process.poll() is None, 'the sweep finished before it could be killed'
  os.killpg(process.pid, signal.SIGKILL)
  process.wait(timeout=60)
  assert (workdir / names[0] / 'results.json').exists()
  assert not (workdir / names[1] / 'results.json').exists()
  first_results_mtime = os.path.getmtime(workdir / names[0] / 'results.json')

  # Second attempt: trial 0 is skipped, trial 1 resumes, trial 2 runs.
  result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=400)
  assert result.returncode == 0, result.stderr[-3000:]
  assert f'{names[0]}: finished earlier, skipped' in result.stdout
  assert f'{names[1]}: resuming' in result.stdout
  assert 'resumed from checkpoint step' in (workdir / names[1] / 'log.txt').read_text()
  assert os.path.getmtime(workdir / names[0] / 'results.json') == first_results_mtime

  rows = list(csv.DictReader((workdir / 'summary.csv').read_text().splitlines()))
  assert [r['trial'] for r in rows] == names
  assert [r['optimizer.learning_rate'] for r in rows] == ['0.01', '0.05', '0.1']
  assert all(r['status'] == 'done' and r['step'] == '16' for r in rows)
  assert all(r['num_devices'] == '2' for r in rows)  # each trial saw its own 2 devices
  assert all(0.0 <= float(r['accuracy']) <= 1.0 and r['best_accuracy'] for r in rows)
  assert result.stdout.rstrip().endswith((workdir / 'summary.csv').read_text().rstrip())


@pytest.mark.parametrize(
  'path', sorted(__import__('glob').glob(os.path.join(REPO, 'experiments', 'sweeps', '*.py')))
)
def test_sweep_files_load_and_name_an_existing_config(path):
  if os.path.basename(path).startswith('_'):
    pytest.skip('not a sweep file')
  loaded = sweep.load_sweep(path)
  assert os.path.exists(loaded.base_config) and loaded.trials
