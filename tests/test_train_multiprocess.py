"""Two processes on one machine (2 CPU devices each) train one model, evaluate and resume.

This is the multi-host path: ``jax.distributed.initialize`` from JAX_COORDINATOR_ADDRESS /
JAX_NUM_PROCESSES / JAX_PROCESS_ID, each process feeding its slice of the global batch.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

from tests import _digits_run_files as files

REPO = files.REPO


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _launch(config_path, workdir, total_steps):
  port = _free_port()
  processes, logs = [], []
  for index in range(2):
    env = dict(
      os.environ,
      PYTHONPATH=REPO,
      JAX_PLATFORMS='cpu',
      XLA_FLAGS='--xla_force_host_platform_device_count=2',
      JAX_COORDINATOR_ADDRESS=f'localhost:{port}',
      JAX_NUM_PROCESSES='2',
      JAX_PROCESS_ID=str(index),
    )
    # Output goes to files: a full pipe would block one process inside a collective.
    logs.append(
      open(os.path.join(workdir.parent, f'{workdir.name}_{total_steps}_{index}.log'), 'w+')
    )
    processes.append(
      subprocess.Popen(
        [
          sys.executable,
          '-m',
          'experiments.main',
          f'--config={config_path}',
          f'--workdir={workdir}',
          f'--config.total_steps={total_steps}',
        ],
        cwd=REPO,
        env=env,
        stdout=logs[-1],
        stderr=subprocess.STDOUT,
      )
    )
  try:
    for p in processes:
      p.wait(timeout=150)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
  outputs = []
  for log in logs:
    log.seek(0)
    outputs.append(log.read())
    log.close()
  assert [p.returncode for p in processes] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
  return outputs


@pytest.mark.slow
def test_two_processes_train_evaluate_and_resume(tmp_path):
  data_dir = tmp_path / 'data'
  info = files.build_digits(data_dir)
  config_path = files.write_config(
    tmp_path / 'config.py',
    data_dir,
    {'batch_size': 16, 'checkpoint_every': 4, 'eval_every': 8, 'log_every': 4},
    base='base',
  )
  workdir = tmp_path / 'run'
  _launch(config_path, workdir, total_steps=8)
  results = json.loads((workdir / 'results.json').read_text())
  assert results['num_devices'] == 4
  # Each example of the evaluation split is counted once, although two hosts fed it.
  assert results['count'] == info.splits[info.eval_split]
  data_files = sorted(os.listdir(workdir / 'checkpoints' / '8' / 'data'))
  assert 'process_0-of-2.json' in data_files and 'process_1-of-2.json' in data_files

  outputs = _launch(config_path, workdir, total_steps=12)
  assert 'resumed from checkpoint step 8' in outputs[0]
  assert json.loads((workdir / 'results.json').read_text())['step'] == 12
