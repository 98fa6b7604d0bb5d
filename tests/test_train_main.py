"""experiments/main.py: config overrides are checked at start, naming the bad key."""

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def config_file(tmp_path):
  path = tmp_path / 'config.py'
  path.write_text(
    textwrap.dedent("""
      from experiments.configs import base

      def get_config():
        config = base.get_base_config()
        config.model.name = 'lenet5'
        config.data.name = 'digits'
        return config
  """)
  )
  return path


def _run(config_file, tmp_path, *overrides):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  return subprocess.run(
    [
      sys.executable,
      '-m',
      'experiments.main',
      f'--config={config_file}',
      f'--workdir={tmp_path / "w"}',
      *overrides,
    ],
    cwd=REPO,
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )


def test_misspelt_key_fails_naming_it(config_file, tmp_path):
  result = _run(config_file, tmp_path, '--config.optimizer.learning_rat=0.1')
  assert result.returncode != 0
  assert 'learning_rat' in result.stderr
  assert not (tmp_path / 'w').exists()  # nothing started


def test_wrong_type_fails_naming_key(config_file, tmp_path):
  result = _run(config_file, tmp_path, '--config.total_steps=ten')
  assert result.returncode != 0
  assert 'total_steps' in result.stderr
  assert not (tmp_path / 'w').exists()


def test_new_key_cannot_be_added_to_locked_config(config_file, tmp_path):
  result = _run(config_file, tmp_path, '--config.optimizer.new_field=1')
  assert result.returncode != 0 and 'new_field' in result.stderr
