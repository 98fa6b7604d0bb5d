"""A real training process killed with SIGKILL and restarted ends where an uninterrupted one does.

Runs ``python -m experiments.main`` (LeNet-5 on the small ``digits`` dataset, CPU) three times:
uninterrupted; killed part-way once a checkpoint exists; restarted in the killed run's workdir.
The final train states must be bit-identical: parameters, optimizer state, step and rng, which
also requires the data iterator to resume at the same position.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOTAL_STEPS = 60


def _write_config(path, data_dir):
  path.write_text(
    textwrap.dedent(f"""
      from experiments.configs import base

      def get_config():
        config = base.get_base_config()
        config.task = 'classification'
        config.model.name = 'lenet5'
        config.data.name = 'digits'
        config.data.data_dir = {str(data_dir)!r}
        config.total_steps = {TOTAL_STEPS}
        config.batch_size = 16
        config.checkpoint_every = 5
        config.eval_every = {TOTAL_STEPS}
        config.log_every = 20
        config.optimizer.learning_rate = 0.05
        return config
  """)
  )


def _command(config_path, workdir):
  return [
    sys.executable,
    '-m',
    'experiments.main',
    f'--config={config_path}',
    f'--workdir={workdir}',
  ]


def _env():
  env = dict(os.environ)
  env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  return env


def _final_state(workdir):
  from jaxseg.train import checkpoints  # pylint: disable=g-import-not-at-top

  ckpt = checkpoints.Checkpointer(
    os.path.join(workdir, 'checkpoints'), keep=3, best_metric='accuracy', best_mode='max'
  )
  assert ckpt.latest_step() == TOTAL_STEPS
  return ckpt.restore_state_tree(TOTAL_STEPS)


@pytest.fixture(scope='module')
def digits_dir(tmp_path_factory):
  """Builds the digits dataset once, so the timed processes only read it."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxseg import data  # pylint: disable=g-import-not-at-top

  data_dir = tmp_path_factory.mktemp('digits_data')
  data.dataset_info(ml_collections.ConfigDict({'name': 'digits', 'data_dir': str(data_dir)}))
  return data_dir


@pytest.mark.slow  # ~12 s: two training processes (the in-process resume test stays default)
def test_sigkill_and_resume_gives_the_uninterrupted_result(tmp_path, digits_dir):
  config_path = tmp_path / 'config.py'
  _write_config(config_path, digits_dir)
  full, killed = tmp_path / 'full', tmp_path / 'killed'
  subprocess.run(
    _command(config_path, full), cwd=REPO, env=_env(), check=True, capture_output=True, timeout=300
  )

  process = subprocess.Popen(
    _command(config_path, killed),
    cwd=REPO,
    env=_env(),
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  checkpoint_dir = killed / 'checkpoints'
  deadline = time.time() + 240
  while time.time() < deadline:
    done = [
      d for d in (os.listdir(checkpoint_dir) if checkpoint_dir.exists() else []) if d.isdigit()
    ]
    if done or process.poll() is not None:
      break
    time.sleep(0.02)
  assert process.poll() is None, 'the run finished before it could be killed'
  os.kill(process.pid, signal.SIGKILL)
  process.wait(timeout=60)
  saved = sorted(int(d) for d in os.listdir(checkpoint_dir) if d.isdigit())
  assert saved and saved[-1] < TOTAL_STEPS, saved
  assert not (killed / 'results.json').exists()

  resume = subprocess.run(
    _command(config_path, killed),
    cwd=REPO,
    env=_env(),
    check=True,
    capture_output=True,
    text=True,
    timeout=300,
  )
  # The restarted run really continued from the last checkpoint, not from scratch.
  assert f'resumed from checkpoint step {saved[-1]}' in resume.stderr
  expected, resumed = _final_state(full), _final_state(killed)
  assert jax.tree.structure(expected) == jax.tree.structure(resumed)
  for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(resumed)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
