"""Tiny model, task and in-memory data for the training-engine tests (not a test module).

Independent of the model zoo and the data layer so the engine is tested on its own; the
end-to-end tests (test_train_resume.py, test_configs.py) use the real ones.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import experiments.configs.base as base_config
from jaxseg import nn as jaxseg_nn

IMAGE_SHAPE = (8, 8, 3)
NUM_CLASSES = 5


class TinyNet(nn.Module):
  """conv 3x3 -> BatchNorm -> relu -> global mean -> dropout -> dense; returns (logits, {})."""

  num_classes: int = NUM_CLASSES
  features: int = 4
  dropout_rate: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.Conv(self.features, (3, 3), dtype=self.dtype)(x)
    x = jaxseg_nn.BatchNorm(use_running_average=not train, dtype=self.dtype)(x)
    x = nn.relu(x).mean(axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x), {'features': x}


class SoftmaxTask:
  """A minimal Task: mean cross-entropy; eval sums of loss, correct and count."""

  name = 'test_softmax'

  def __init__(self):
    self.traces = 0

  def loss(self, outputs, endpoints, batch):
    self.traces += 1  # Python side effect: runs only while tracing
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs, batch['label'])
    return jnp.mean(ce), {'accuracy': jnp.mean(jnp.argmax(outputs, -1) == batch['label'])}

  def eval_sums(self, outputs, endpoints, batch):
    valid = batch['valid'].astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(outputs, batch['label'])
    correct = (jnp.argmax(outputs, -1) == batch['label']).astype(jnp.float32)
    return {
      'loss_sum': jnp.sum(ce * valid),
      'correct': jnp.sum(correct * valid),
      'count': jnp.sum(valid),
    }

  def finalize(self, sums):
    count = float(sums['count'])
    return {
      'loss': float(sums['loss_sum']) / count,
      'accuracy': float(sums['correct']) / count,
      'count': count,
    }

  def write_images(self, workdir, step, batch, outputs, *, num_images=4):
    pass


def make_dataset(num_examples: int, *, seed: int = 0):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, NUM_CLASSES, num_examples).astype(np.int32)
  images = rng.normal(size=(num_examples, *IMAGE_SHAPE)).astype(np.float32)
  images[..., 0] += labels[:, None, None]  # learnable signal
  return images, labels


class ArrayIterator:
  """Endless shuffled batches of this process's slice, with grain-style get_state/set_state.

  ``nan_at``: the batch with this 0-based position gets NaN images (for the NaN guard test).
  """

  def __init__(
    self, images, labels, *, global_batch_size, seed, process_index=0, process_count=1, nan_at=None
  ):
    self.images, self.labels = images, labels
    self.local = global_batch_size // process_count
    self.offset = process_index * self.local
    self.global_batch_size, self.seed = global_batch_size, seed
    self.position = 0
    self.nan_at = nan_at

  def __iter__(self):
    return self

  def __next__(self):
    n = len(self.labels)
    per_epoch = n // self.global_batch_size
    epoch, index = divmod(self.position, per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(n)
    start = index * self.global_batch_size + self.offset
    rows = order[start : start + self.local]
    batch = {'image': self.images[rows].copy(), 'label': self.labels[rows]}
    if self.nan_at == self.position:
      batch['image'][:] = np.nan
    self.position += 1
    return batch

  def get_state(self):
    return {'position': self.position}

  def set_state(self, state):
    self.position = int(state['position'])


def eval_batches(images, labels, *, global_batch_size, process_index=0, process_count=1):
  """One padded pass with a 'valid' mask."""
  local = global_batch_size // process_count
  n = len(labels)
  for start in range(0, n, global_batch_size):
    rows = np.arange(start + process_index * local, start + (process_index + 1) * local)
    valid = rows < n
    rows = np.minimum(rows, n - 1)
    yield {'image': images[rows], 'label': labels[rows], 'valid': valid}


def tiny_config(**overrides):
  config = base_config.get_base_config()
  config.task = 'test_softmax'
  config.total_steps = 8
  config.batch_size = 8
  config.eval_every = 4
  config.checkpoint_every = 2
  config.log_every = 2
  config.best_metric = 'accuracy'
  config.optimizer.learning_rate = 0.05
  config.write_images = False
  for key, value in overrides.items():
    target = config
    *parents, leaf = key.split('.')
    for p in parents:
      target = target[p]
    target[leaf] = value
  return config


def run_tiny(config, workdir, *, task=None, model=None, nan_at=None, num_examples=64):
  from jaxseg import train  # pylint: disable=g-import-not-at-top

  images, labels = make_dataset(num_examples)
  eval_images, eval_labels = make_dataset(20, seed=1)
  task = task or SoftmaxTask()

  def make_train_iterator(*, process_index, process_count):
    return ArrayIterator(
      images,
      labels,
      global_batch_size=config.batch_size,
      seed=config.seed,
      process_index=process_index,
      process_count=process_count,
      nan_at=nan_at,
    )

  def make_eval_iterator(*, process_index, process_count):
    return eval_batches(
      eval_images,
      eval_labels,
      global_batch_size=config.batch_size,
      process_index=process_index,
      process_count=process_count,
    )

  # As big_vision's loop: every host-device transfer must be explicit (jax.device_put /
  # device_get, make_global_batch); a new implicit one, a hidden round trip, fails the test.
  with jax.transfer_guard('disallow'):
    return train.run(
      config,
      workdir,
      model=model or TinyNet(),
      task=task,
      input_shape=IMAGE_SHAPE,
      make_train_iterator=make_train_iterator,
      make_eval_iterator=make_eval_iterator,
    )
