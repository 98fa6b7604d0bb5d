"""Checkpoints verify themselves and fall back; one run per workdir; the checkpointer is closed.

Issue 14, items 1-3. A run of 6 steps (checkpoints at 2, 4, 6) is damaged in one way per test
(truncated or deleted array file, broken JSON, one flipped bit in the arrays or in the
data-iterator state, an unreadable manifest) and resumed to 8 steps: the damaged checkpoint 6 is
named and moved aside, the run resumes from 4 and finishes equal to an uninterrupted 8-step run.
"""

import json
import os
import re
import shutil

import numpy as np
import pytest

import _train_fixtures as fx
from jaxseg import train
from jaxseg.train import checkpoints, workdir_lock


def _config(total_steps):
  return fx.tiny_config(
    total_steps=total_steps,
    checkpoint_every=2,
    eval_every=total_steps,
    log_every=total_steps,
    keep_checkpoints=5,
  )


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
  root = tmp_path_factory.mktemp('integrity')
  full = fx.run_tiny(_config(8), str(root / 'full'))
  fx.run_tiny(_config(6), str(root / 'partial'))
  return full, root / 'partial'


def _largest_file(folder):
  paths = [os.path.join(r, f) for r, _, fs in os.walk(folder) for f in fs]
  return max(paths, key=os.path.getsize)


def _truncate_array(step_dir):
  path = _largest_file(step_dir / 'state')
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)
  return 'has'


def _delete_array(step_dir):
  os.remove(_largest_file(step_dir / 'state'))
  return 'is missing'


def _broken_data_json(step_dir):
  (step_dir / 'data' / 'process_0-of-1.json').write_text('{"kind": "json", "state": {"posi')
  return 'process_0-of-1.json'


def _broken_state_metadata(step_dir):
  metadata = step_dir / 'state' / '_METADATA'
  metadata.write_text(metadata.read_text()[:-7])
  return '_METADATA'


def _flip_array_bit(step_dir):
  path = _largest_file(step_dir / 'state')
  with open(path, 'r+b') as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)[0]
    f.seek(-1, 1)
    f.write(bytes([byte ^ 0x10]))
  return 'SHA-256'


def _flip_iterator_bit(step_dir):
  # position 6 -> 7 (one bit) in the data-iterator state; the file stays valid JSON.
  path = step_dir / 'data' / 'process_0-of-1.json'
  text = path.read_text()
  flipped = re.sub(r'"position": (\d+)', lambda m: f'"position": {int(m[1]) ^ 1}', text)
  assert flipped != text
  path.write_text(flipped)
  return 'SHA-256'


def _broken_manifest(step_dir):
  (step_dir / checkpoints.MANIFEST).write_text('{"format": 1, "fi')
  return 'unreadable'


DAMAGES = [
  _truncate_array,
  _delete_array,
  _broken_data_json,
  _broken_state_metadata,
  _flip_array_bit,
  _flip_iterator_bit,
  _broken_manifest,
]


@pytest.mark.slow  # 9 short trainings (~60 s on 2 loaded cores); the Checkpointer-level test below
@pytest.mark.parametrize('damage', DAMAGES)  # runs by default
def test_damaged_newest_checkpoint_falls_back_and_finishes_equal(damage, runs, tmp_path, capsys):
  full, partial = runs
  workdir = tmp_path / 'run'
  shutil.copytree(partial, workdir)
  ckpt_dir = workdir / 'checkpoints'
  assert sorted(int(p) for p in os.listdir(ckpt_dir) if p.isdigit()) == [2, 4, 6]
  expected_reason = damage(ckpt_dir / '6')
  resumed = fx.run_tiny(_config(8), str(workdir))
  err = capsys.readouterr().err
  assert 'checkpoint step 6 is damaged' in err and expected_reason in err, err
  assert 'falling back to step 4' in err and 'resumed from checkpoint step 4' in err
  # Moved aside with the reason, never deleted.
  (moved,) = os.listdir(workdir / checkpoints.CORRUPT_DIR)
  assert moved.startswith('6-')
  why = (workdir / checkpoints.CORRUPT_DIR / moved / 'WHY_MOVED_ASIDE.txt').read_text()
  assert 'step 6' in why
  assert resumed['step'] == full['step'] == 8
  assert resumed['loss'] == full['loss'] and resumed['accuracy'] == full['accuracy']


@pytest.mark.slow
def test_every_checkpoint_verifies_and_lists_the_iterator_state(runs):
  _, partial = runs
  for step in (2, 4, 6):
    step_dir = str(partial / 'checkpoints' / str(step))
    assert checkpoints.verify_step_dir(step_dir, step) is None
    with open(os.path.join(step_dir, checkpoints.MANIFEST)) as f:
      files = json.load(f)['files']
    assert 'data/process_0-of-1.json' in files
    assert any(name.startswith('state/') for name in files)


@pytest.mark.slow
def test_all_checkpoints_damaged_starts_from_scratch_and_says_so(runs, tmp_path, capsys):
  full, partial = runs
  workdir = tmp_path / 'run'
  shutil.copytree(partial, workdir)
  for step in (2, 4, 6):
    _truncate_array(workdir / 'checkpoints' / str(step))
  resumed = fx.run_tiny(_config(8), str(workdir))
  err = capsys.readouterr().err
  assert 'no older checkpoint is left: starting from scratch' in err
  assert len(os.listdir(workdir / checkpoints.CORRUPT_DIR)) == 3
  assert resumed['loss'] == full['loss']


@pytest.mark.slow
def test_nan_guard_before_any_checkpoint_says_none_exists(tmp_path):
  config = fx.tiny_config(total_steps=10, checkpoint_every=4, log_every=1, eval_every=10)
  with pytest.raises(train.NonFiniteError) as error:
    fx.run_tiny(config, str(tmp_path), nan_at=1)
  message = str(error.value)
  assert 'at step 2' in message and 'No verified checkpoint exists yet' in message
  assert 'step None' not in message


def test_second_run_on_a_workdir_is_refused_naming_the_pid(tmp_path):
  with workdir_lock.WorkdirLock(str(tmp_path), 0):
    with pytest.raises(workdir_lock.WorkdirLockedError, match=f'PID {os.getpid()}'):
      fx.run_tiny(fx.tiny_config(total_steps=2), str(tmp_path))
  assert not os.path.exists(tmp_path / 'metrics.jsonl')  # refused before writing anything
  # Other process indices of a multi-host run share the workdir.
  with workdir_lock.WorkdirLock(str(tmp_path), 0), workdir_lock.WorkdirLock(str(tmp_path), 1):
    pass


@pytest.mark.slow
def test_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path, capsys):
  (tmp_path / '.lock.process_0').write_text(json.dumps({'pid': 999999999, 'host': 'gone'}))
  result = fx.run_tiny(fx.tiny_config(total_steps=2, eval_every=2), str(tmp_path))
  assert result['step'] == 2
  assert 'took over the stale workdir lock' in capsys.readouterr().err
  assert (tmp_path / '.lock.process_0').read_text() == ''  # released cleanly


@pytest.mark.slow
def test_checkpointer_closed_when_the_run_fails(tmp_path, monkeypatch):
  closed = []
  original = checkpoints.Checkpointer.close

  def close(self):
    closed.append(True)
    original(self)

  monkeypatch.setattr(checkpoints.Checkpointer, 'close', close)

  class Failing(fx.SoftmaxTask):
    def loss(self, *args):
      raise RuntimeError('boom in the loss')

  with pytest.raises(RuntimeError, match='boom'):
    fx.run_tiny(fx.tiny_config(total_steps=2), str(tmp_path), task=Failing())
  assert closed == [True]
  # ... and the workdir is free again.
  with workdir_lock.WorkdirLock(str(tmp_path), 0):
    pass


def test_manifest_detects_every_single_bit_flip_of_a_small_file(tmp_path):
  step_dir = tmp_path / '3'
  (step_dir / 'data').mkdir(parents=True)
  payload = np.arange(16, dtype=np.uint8).tobytes()
  (step_dir / 'data' / 'f.bin').write_bytes(payload)
  checkpoints.write_manifest(str(step_dir), 3)
  assert checkpoints.verify_step_dir(str(step_dir), 3) is None
  for bit in range(len(payload) * 8):
    flipped = bytearray(payload)
    flipped[bit // 8] ^= 1 << (bit % 8)
    (step_dir / 'data' / 'f.bin').write_bytes(bytes(flipped))
    assert 'SHA-256' in checkpoints.verify_step_dir(str(step_dir), 3)
  assert checkpoints.verify_step_dir(str(step_dir), 4).startswith('manifest.json is unreadable')


class _Position:
  """A data iterator with grain's get_state/set_state."""

  def __init__(self, position=0):
    self.position = position

  def get_state(self):
    return {'position': self.position}

  def set_state(self, state):
    self.position = state['position']


@pytest.mark.parametrize(
  'damage', [_truncate_array, _flip_array_bit, _flip_iterator_bit, _broken_data_json, _delete_array]
)
def test_restore_latest_names_moves_aside_and_falls_back(damage, tmp_path):
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  ckpt = checkpoints.Checkpointer(
    str(tmp_path / 'checkpoints'), keep=5, best_metric='accuracy', best_mode='max'
  )
  with ckpt:
    for step in (1, 2):
      ckpt.save(step, {'w': jnp.full((64, 64), float(step))}, _Position(step))
    assert ckpt.last_verified_step() == 2
    expected_reason = damage(tmp_path / 'checkpoints' / '2')
    notes, iterator = [], _Position()
    step, state = ckpt.restore_latest({'w': jnp.zeros((64, 64))}, iterator, note=notes.append)
    assert step == 1 and float(state['w'][0, 0]) == 1.0 and iterator.position == 1
    assert len(notes) == 1 and 'checkpoint step 2 is damaged' in notes[0]
    assert expected_reason in notes[0] and 'falling back to step 1' in notes[0]
    assert ckpt.all_steps() == [1]
    (moved,) = os.listdir(tmp_path / checkpoints.CORRUPT_DIR)
    assert os.path.isdir(tmp_path / checkpoints.CORRUPT_DIR / moved / 'state')
    assert 'last good checkpoint is step 1 (verified)' in ckpt.describe_last_good()
