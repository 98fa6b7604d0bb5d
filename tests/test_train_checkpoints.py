"""Checkpoint retention, iterator state, and atomicity of a step directory."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.train import checkpoints


class _Iterator:
  def __init__(self, state):
    self.state = state

  def get_state(self):
    return self.state

  def set_state(self, state):
    self.state = state


def _ckpt(path, keep=2, mode='max'):
  return checkpoints.Checkpointer(str(path), keep=keep, best_metric='accuracy', best_mode=mode)


def _state(value):
  return {'w': jnp.full((3,), value, jnp.float32), 'step': jnp.int32(value)}


@pytest.mark.parametrize(
  'iterator_state', [{'position': 7, 'epoch': 2}, b'{"grain": "bytes state"}']
)
def test_state_and_iterator_position_round_trip(tmp_path, iterator_state):
  ckpt = _ckpt(tmp_path)
  ckpt.save(5, _state(5.0), _Iterator(iterator_state))
  target = _Iterator(None)
  restored = ckpt.restore(5, _state(0.0), target)
  np.testing.assert_array_equal(restored['w'], [5.0, 5.0, 5.0])
  assert target.state == iterator_state and type(target.state) is type(iterator_state)


@pytest.mark.parametrize('mode,best_accuracy_step', [('max', 2), ('min', 6)])
def test_keeps_last_k_and_the_best(tmp_path, mode, best_accuracy_step):
  ckpt = _ckpt(tmp_path, keep=2, mode=mode)
  accuracies = {2: 0.9, 4: 0.5, 6: 0.1, 8: None, 10: None}
  for step, accuracy in accuracies.items():
    metrics = None if accuracy is None else {'accuracy': accuracy, 'loss': 1.0}
    ckpt.save(step, _state(float(step)), _Iterator({'p': step}), metrics=metrics)
  assert ckpt.all_steps() == sorted({best_accuracy_step, 8, 10})
  assert ckpt.best() == (best_accuracy_step, accuracies[best_accuracy_step])


def test_unfinished_step_directory_is_ignored_and_previous_checkpoint_intact(tmp_path):
  ckpt = _ckpt(tmp_path)
  ckpt.save(3, _state(3.0), _Iterator({'p': 3}))
  ckpt.close()
  # What a process killed mid-save leaves behind: orbax writes into a temporary directory and
  # renames it only once complete.
  partial = tmp_path / '6.orbax-checkpoint-tmp-1234'
  (partial / 'state').mkdir(parents=True)
  (partial / 'state' / 'garbage').write_bytes(b'\x00' * 10)
  reopened = _ckpt(tmp_path)
  assert reopened.latest_step() == 3
  restored = reopened.restore(3, _state(0.0), _Iterator(None))
  np.testing.assert_array_equal(restored['w'], [3.0, 3.0, 3.0])
  assert not partial.exists()  # cleaned up on restart


def test_best_metric_missing_from_metrics_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="best_metric 'accuracy'"):
    _ckpt(tmp_path).save(1, _state(1.0), _Iterator({}), metrics={'miou': 0.5})
