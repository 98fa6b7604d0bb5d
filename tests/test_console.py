"""The training console: rate and ETA never count the compiling first step (issue 14, item 8)."""

import time

import jax.numpy as jnp

from jaxseg.train import loop


class _Logger:
  def __init__(self):
    self.rows = []

  def log(self, step, split, metrics, *, steps_per_sec=None, images_per_sec=None):
    self.rows.append((step, steps_per_sec))


def _metrics(step):
  return {
    'loss': jnp.float32(1.0 / step),
    'grad_norm': jnp.float32(1.0),
    'finite': jnp.bool_(True),
    'learning_rate': jnp.float32(0.1),
  }


def test_rate_is_timed_from_the_end_of_the_first_step():
  meter, logger = loop._TrainMeter(8, 0, ckpt=None), _Logger()
  time.sleep(0.3)  # stands for compiling the first step
  meter.add(1, _metrics(1))
  meter.flush(1, _metrics(1), logger)
  assert logger.rows[-1] == (1, 0.0)  # only the first step so far: rate unknown, no ETA
  for step in (2, 3):
    meter.add(step, _metrics(step))
  meter.flush(3, _metrics(3), logger)
  step, rate = logger.rows[-1]
  assert step == 3 and rate > 2 / 0.3  # two steps, timed without the 0.3 s "compilation"
