"""SIGTERM or Ctrl-C to experiments.sweep reaches every running trial: each saves a checkpoint and
stops, nothing is left training with parent PID 1, and the console names trial k of N
(issue 14, item 9)."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from experiments import sweep
from tests import _digits_run_files as files

REPO = files.REPO


def _write_files(tmp_path, data_dir):
  config = files.write_config(
    tmp_path / 'long_config.py',
    data_dir,
    {
      'total_steps': 100000,  # long: the signal must stop it
      'batch_size': 16,
      'checkpoint_every': 4,
      'eval_every': 100000,
      'log_every': 2,
      'eval_steps': 2,
      'write_images': False,
      'schedule.warmup_steps': 0,
    },
  )
  return files.write_sweep(
    tmp_path / 'sweep_file.py', config, "sweep.product({'optimizer.learning_rate': [0.01, 0.05]})"
  )


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  with open(f'/proc/{pid}/stat') as f:  # a zombie is dead too
    return f.read().split(')')[-1].split()[0] != 'Z'


@pytest.mark.slow
@pytest.mark.parametrize('how', ['sigterm_to_sweep', 'ctrl_c_to_group'])
def test_signal_stops_every_trial_with_a_checkpoint(how, tmp_path):
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
    '--devices_per_trial=1',
  ]
  process = subprocess.Popen(
    command,
    cwd=REPO,
    env=dict(os.environ, PYTHONPATH=REPO),
    stdout=subprocess.PIPE,
    stderr=subprocess.STDOUT,
    text=True,
    start_new_session=True,
  )
  names = [
    sweep.trial_name(i, {'optimizer.learning_rate': lr}) for i, lr in enumerate([0.01, 0.05])
  ]
  checkpoints = workdir / names[0] / 'checkpoints'
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    if checkpoints.exists() and any(d.isdigit() for d in os.listdir(checkpoints)):
      break
    time.sleep(0.1)
  assert process.poll() is None, 'the sweep ended before the signal'
  if how == 'sigterm_to_sweep':
    process.send_signal(signal.SIGTERM)
  else:  # a terminal's Ctrl-C goes to the whole foreground process group
    os.killpg(process.pid, signal.SIGINT)
  output, _ = process.communicate(timeout=300)
  assert process.returncode == 1, output
  (pid,) = [
    int(p) for p in re.findall(r'trial 1/2 \S+: starting on cpu \[0\] \(pid (\d+)\)', output)
  ]
  assert not _alive(pid), 'the trial was left running'
  assert 'forwarding SIGTERM to the running trial(s)' in output
  assert 'trial 1/2' in output and 'stopped (checkpoint saved' in output
  log = (workdir / names[0] / 'log.txt').read_text()
  assert 'SIGTERM: saved checkpoint step' in log, log[-2000:]
  assert not (workdir / names[1]).exists(), 'no new trial may start after the signal'
  summary = (workdir / 'summary.csv').read_text()
  assert summary.count('stopped') == 2
