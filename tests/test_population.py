"""jaxseg.train.population: a vmapped population equals its members trained alone."""

import json
import os

import jax
import numpy as np
import pytest

from jaxseg import train
from jaxseg.train import population
from tests import _train_fixtures as fx

STEPS = 50
LEARNING_RATES = (0.02, 0.05, 0.1, 0.2, 0.03, 0.07, 0.15, 0.01)


def _config(**overrides):
  # One logged loss per step (log_every=1): the per-step comparison below.
  fields = dict(total_steps=STEPS, log_every=1, eval_every=25, checkpoint_every=25)
  return fx.tiny_config(**{**fields, **overrides})


def _members(num, **fixed):
  """``num`` SGD members: own learning rate, seed, momentum 0 or 0.9, weight decay 0 to 2e-3."""
  return [
    _config(
      **{
        'seed': k,
        'optimizer.name': 'sgd',
        'optimizer.learning_rate': LEARNING_RATES[k],
        'optimizer.momentum': 0.9 if k % 2 else 0.0,
        'optimizer.weight_decay': 1e-3 * (k % 3),
        **fixed,
      }
    )
    for k in range(num)
  ]


def _data(batch_size, data_seed):
  """Train and eval iterator factories; ``data_seed`` orders the batches."""
  images, labels = fx.make_dataset(64)
  eval_images, eval_labels = fx.make_dataset(20, seed=1)
  return dict(
    make_train_iterator=lambda **kw: fx.ArrayIterator(
      images, labels, global_batch_size=batch_size, seed=data_seed, **kw
    ),
    make_eval_iterator=lambda **kw: fx.eval_batches(
      eval_images, eval_labels, global_batch_size=batch_size, **kw
    ),
  )


MODEL = fx.TinyNet(dropout_rate=0.2)  # BatchNorm and dropout: per-member statistics and keys


def _run_population(configs, root, *, devices=None):
  workdirs = [str(root / f'member{k}') for k in range(len(configs))]
  results = population.run_population(
    configs,
    workdirs,
    str(root / 'population'),
    model=MODEL,
    task=fx.SoftmaxTask(),
    input_shape=fx.IMAGE_SHAPE,
    devices=devices,
    print_fn=lambda line: None,
    **_data(configs[0].batch_size, configs[0].seed),
  )
  return workdirs, results


def _alone(config, workdir, *, data_seed):
  """The same trial run alone by jaxseg.train.run, on the population's data order."""
  return train.run(
    config,
    workdir,
    model=MODEL,
    task=fx.SoftmaxTask(),
    input_shape=fx.IMAGE_SHAPE,
    **_data(config.batch_size, data_seed),
  )


def _train_losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return np.asarray([r['loss'] for r in rows if r['split'] == 'train'])


def _check_members_equal_alone(tmp_path, configs, checked, devices):
  workdirs, results = _run_population(configs, tmp_path, devices=devices)
  for k in checked:
    alone_dir = str(tmp_path / f'alone{k}')
    alone = _alone(configs[k], alone_dir, data_seed=configs[0].seed)
    member, reference = _train_losses(workdirs[k]), _train_losses(alone_dir)
    assert member.shape == reference.shape == (STEPS,)
    np.testing.assert_allclose(member, reference, rtol=0, atol=1e-5)
    assert results[k]['accuracy'] == pytest.approx(alone['accuracy'], abs=1e-6)
    assert results[k]['best_step'] == alone['best_step']
  # The members really differ (own seeds and rates), and learn.
  finals = [_train_losses(w)[-5:].mean() for w in workdirs]
  assert len({round(f, 6) for f in finals}) == len(configs)


def test_members_equal_alone_runs_on_one_device(tmp_path):
  configs = _members(2)
  _check_members_equal_alone(tmp_path, configs, [0, 1], jax.devices()[:1])


@pytest.mark.slow
def test_members_equal_alone_runs_on_eight_devices(tmp_path):
  configs = _members(8)
  assert jax.device_count() == 8
  _check_members_equal_alone(tmp_path, configs, [0, 3, 5], jax.devices())
