"""Two processes on one machine (2 CPU devices each) train one model, evaluate and resume.

This is the multi-host path: ``jax.distributed.initialize`` from JAX_COORDINATOR_ADDRESS /
JAX_NUM_PROCESSES / JAX_PROCESS_ID, each process feeding its slice of the global batch.
"""

import json
import os
import random
import socket
import subprocess
import sys
import time

import pytest

from jaxseg.train import sharding
from tests import _digits_run_files as files

REPO = files.REPO


_LAUNCH_LIMIT_S = 150  # a launch takes ~10-30 s on a 2-core machine


def _ephemeral_ports() -> tuple[int, int]:
  try:
    with open('/proc/sys/net/ipv4/ip_local_port_range') as f:
      low, high = (int(word) for word in f.read().split())
    return low, high
  except (OSError, ValueError):
    return 32768, 60999  # Linux's default


def _free_port():
  """A port the coordinator can bind, outside the kernel's range of ephemeral ports if it can.

  ``bind(('localhost', 0))`` picks one from that range, where any outgoing connection can take it
  before the coordinator binds it. A coordinator that cannot bind its port kills process 0 at
  once (SIGSEGV in jax 0.10), and process 1 then waits for it until jax.distributed's
  initialization timeout (300 s): the shape of a CI failure of this test (stop 25). Where the
  ephemeral range covers every port, any free port will do.
  """
  low, high = _ephemeral_ports()
  outside = [port for port in range(10000, 65536) if not low <= port <= high]
  random.shuffle(outside)
  for port in outside[:1000]:
    try:
      sharding._check_port_free(port, f'localhost:{port}')  # every interface, as process 0 binds
    except OSError:
      continue
    return port
  with socket.socket() as s:  # the ephemeral range covers every port: the kernel's choice
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _wait_all(processes) -> str | None:
  """Waits for every process; None when all exited, else why it stopped waiting.

  A process that fails stops the wait at once: the others would only wait for it in their next
  collective.
  """
  deadline = time.monotonic() + _LAUNCH_LIMIT_S
  while time.monotonic() < deadline:
    codes = [p.poll() for p in processes]
    if all(code is not None for code in codes):
      return None
    failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
    if failed:
      return f'process {failed[0]} exited with {codes[failed[0]]} while another still ran'
    time.sleep(0.2)
  return f'still running after {_LAUNCH_LIMIT_S} s'


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
    stopped_waiting = _wait_all(processes)
  finally:
    for p in processes:
      if p.poll() is None:
        p.kill()
        p.wait()
  outputs = []
  for log in logs:
    log.seek(0)
    outputs.append(log.read())
    log.close()
  tails = '\n'.join(f'--- process {i} ---\n{out[-3000:]}' for i, out in enumerate(outputs))
  assert stopped_waiting is None, f'{stopped_waiting} (port {port}):\n{tails}'
  assert [p.returncode for p in processes] == [0, 0], tails
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
