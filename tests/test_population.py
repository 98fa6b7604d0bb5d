"""jaxseg.train.population: a vmapped population equals its members trained alone."""

import json
import os
import re

import flax.linen as nn
import jax
import numpy as np
import pytest

from jaxseg import nn as jaxseg_nn
from jaxseg import train
from jaxseg.train import checkpoints
from jaxseg.train import loop
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


class _PopulationNet(nn.Module):
  """jaxseg's convolutions (on CPUs a population runs them once per member: the first sees the
  shared batch, the second each member's activations), BatchNorm and dropout (per-member
  statistics and keys); returns (logits, {})."""

  dropout_rate: float = 0.2
  # 3x3 over 3 channels: the shared batch meets the members' filters side by side in one
  # convolution; 5x5 (75 patch columns): as one patch matmul (conv.py's shared-input rule).
  first_window: int = 3

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.relu(jaxseg_nn.Conv(4, self.first_window, name='conv1')(x))
    x = jaxseg_nn.BatchNorm(use_running_average=not train)(jaxseg_nn.Conv(4, 3, name='conv2')(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(nn.relu(x).mean(axis=(1, 2)))
    return nn.Dense(fx.NUM_CLASSES)(x), {}


MODEL = _PopulationNet()


def _run_population(configs, root, *, devices=None, vectorize='auto', model=MODEL):
  workdirs = [str(root / f'member{k}') for k in range(len(configs))]
  results = population.run_population(
    configs,
    workdirs,
    str(root / 'population'),
    model=model,
    task=fx.SoftmaxTask(),
    input_shape=fx.IMAGE_SHAPE,
    devices=devices,
    vectorize=vectorize,
    print_fn=lambda line: None,
    **_data(configs[0].batch_size, configs[0].seed),
  )
  return workdirs, results


def _alone(config, workdir, *, data_seed, model=MODEL):
  """The same trial run alone by jaxseg.train.run, on the population's data order."""
  return train.run(
    config,
    workdir,
    model=model,
    task=fx.SoftmaxTask(),
    input_shape=fx.IMAGE_SHAPE,
    **_data(config.batch_size, data_seed),
  )


def _train_losses(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return np.asarray([r['loss'] for r in rows if r['split'] == 'train'])


def _check_members_equal_alone(tmp_path, configs, checked, devices, vectorize='auto', model=MODEL):
  workdirs, results = _run_population(
    configs, tmp_path, devices=devices, vectorize=vectorize, model=model
  )
  for k in checked:
    alone_dir = str(tmp_path / f'alone{k}')
    alone = _alone(configs[k], alone_dir, data_seed=configs[0].seed, model=model)
    member, reference = _train_losses(workdirs[k]), _train_losses(alone_dir)
    assert member.shape == reference.shape == (STEPS,)
    np.testing.assert_allclose(member, reference, rtol=0, atol=1e-5)
    assert results[k]['accuracy'] == pytest.approx(alone['accuracy'], abs=1e-6)
    assert results[k]['best_step'] == alone['best_step']
    # The member's own checkpoint (what inference reads) holds the alone run's parameters.
    with (
      checkpoints.Checkpointer(
        os.path.join(workdirs[k], 'checkpoints'), keep=3, best_metric='accuracy', best_mode='max'
      ) as member_ckpt,
      checkpoints.Checkpointer(
        os.path.join(alone_dir, 'checkpoints'), keep=3, best_metric='accuracy', best_mode='max'
      ) as alone_ckpt,
    ):
      assert member_ckpt.all_steps() == alone_ckpt.all_steps() == [25, 50]
      jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-5),
        member_ckpt.restore_state_tree(STEPS)['params'],
        alone_ckpt.restore_state_tree(STEPS)['params'],
      )
  # The members really differ (own seeds and rates), and learn.
  finals = [_train_losses(w)[-5:].mean() for w in workdirs]
  assert len({round(f, 6) for f in finals}) == len(configs)


@pytest.mark.parametrize('first_window', [3, 5], ids=['first_conv', 'first_patch_matmul'])
@pytest.mark.parametrize('vectorize', ['auto', pytest.param('unroll', marks=pytest.mark.slow)])
def test_members_equal_alone_runs_on_one_device(tmp_path, vectorize, first_window):
  # Member 0 has momentum 0 and no weight decay in a chain that holds both for member 1: its
  # g + 0 * p and 0 * v must leave it exactly the plain SGD run (the slow test checks more).
  # With a 5x5 first layer the population's takes the patch matmul, the run alone XLA's
  # convolution: the same map, rounded differently.
  configs = _members(2)
  model = _PopulationNet(first_window=first_window)
  _check_members_equal_alone(tmp_path, configs, [0], jax.devices()[:1], vectorize, model)


@pytest.mark.slow
def test_members_equal_alone_runs_on_eight_devices(tmp_path):
  configs = _members(8)
  assert jax.device_count() == 8
  _check_members_equal_alone(tmp_path, configs, [0, 3, 5], jax.devices())


_COLLECTIVES = re.compile(r'collective-permute|all-reduce|all-gather|all-to-all|reduce-scatter')


@pytest.mark.parametrize('per_member', [True, False], ids=['cpu_per_member', 'grouped'])
@pytest.mark.parametrize('num_devices', [2, 8])
def test_members_on_several_devices_train_without_communicating(
  monkeypatch, num_devices, per_member
):
  # Left to the SPMD partitioner, the members' convolutions moved data between devices: CPUs'
  # one convolution per member (a slice of the member axis) collective-permuted activations
  # (XLA:CPU's rendezvous timed out and aborted once steps were dispatched back to back);
  # vmap's grouped convolution (the accelerators' form, forced here) all-gathered filters and
  # activations.
  # Each device must train its own members alone, and equal the same population on one device.
  monkeypatch.setattr(population, '_convolution_per_member', lambda mesh: per_member)
  configs = _members(num_devices, total_steps=3)
  varied = population.check_population(configs)
  batches = fx.ArrayIterator(*fx.make_dataset(64), global_batch_size=configs[0].batch_size, seed=0)
  batches = [next(batches) for _ in range(3)]
  params = []
  for devices in (jax.devices()[:num_devices], jax.devices()[:1]):
    program = population._build(  # pylint: disable=protected-access
      configs,
      varied,
      model=MODEL,
      task=fx.SoftmaxTask(),
      input_shape=fx.IMAGE_SHAPE,
      devices=devices,
      vectorize='auto',
    )
    state = program.init_state()
    for batch in batches:
      batch = jax.device_put(batch, program.replicated)
      state, _ = program.train_step(state, program.hyperparams, batch)
    eval_batch = jax.device_put(loop._with_valid(batch), program.replicated)  # pylint: disable=protected-access
    for compiled in (
      program.train_step.lower(state, program.hyperparams, batch).compile(),
      program.eval_step.lower(state, eval_batch).compile(),
    ):
      found = _COLLECTIVES.search(compiled.as_text())
      assert found is None, f'{len(devices)} devices: {found.group()} in the compiled step'
    params.append(jax.device_get(state.params))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-6), *params)


def test_refuses_shape_changing_fields_before_building(tmp_path):
  from experiments import sweep  # pylint: disable=g-import-not-at-top

  for field, values in (
    ('batch_size', [8, 16]),
    ('model.features', [4, 8]),
    ('data.image_size', [28, 32]),
    ('optimizer.name', ['sgd', 'adam']),
  ):
    trials = [{field: v, 'seed': k} for k, v in enumerate(values)]
    configs = [fx.tiny_config() for _ in trials]
    for config, overrides in zip(configs, trials):
      with config.unlocked():
        config.update_from_flattened_dict(overrides)
    with pytest.raises(ValueError, match=rf'differ in config\.{field} .*--mode=processes'):
      population.check_population(configs)
  # Through the sweep: the first trial's config file and overrides, refused before JAX builds
  # anything (no population directory, no trial directory).
  config_file = tmp_path / 'config.py'
  config_file.write_text(
    'from experiments.configs import lenet5_digits\n'
    'def get_config():\n'
    '  return lenet5_digits.get_config()\n'
  )
  refused = sweep.Sweep(
    base_config=str(config_file),
    trials=sweep.product({'optimizer.learning_rate': [0.1, 0.2]}, {'batch_size': [32, 64]}),
  )
  with pytest.raises(ValueError, match=r'config\.batch_size \(\[32, 64, 32, 64\]\).*processes'):
    sweep.run_vectorized(refused, str(tmp_path / 'sweep'))
  assert not (tmp_path / 'sweep').exists()
  with pytest.raises(ValueError, match='no_such_field'):
    sweep.load_trial_config(str(config_file), {'optimizer.no_such_field': 1.0})


def test_varied_optimizer_scalars_are_accepted():
  configs = _members(4, **{'optimizer.name': 'adamw', 'optimizer.b1': 0.8})
  with configs[1].unlocked():
    configs[1].optimizer.eps = 1e-6
  varied = population.check_population(configs)
  assert set(varied) == {
    'seed',
    'optimizer.learning_rate',
    'optimizer.momentum',
    'optimizer.weight_decay',
    'optimizer.eps',
  }
  with configs[2].unlocked():
    configs[2].schedule.end_value = 1e-4
  with pytest.raises(ValueError, match='end_value'):
    population.check_population(configs)


def test_population_size_must_be_a_multiple_of_the_devices(tmp_path):
  with pytest.raises(ValueError, match='3 members, not a multiple of the 2 devices'):
    _run_population(_members(3), tmp_path, devices=jax.devices()[:2])
  assert not (tmp_path / 'population').exists()


def test_a_diverging_member_fails_alone(tmp_path):
  configs = _members(2, total_steps=8, log_every=2, eval_every=4, checkpoint_every=4)
  with configs[1].unlocked():
    configs[1].optimizer.learning_rate = 1e12  # diverges to Inf/NaN within a few steps
  workdirs, results = _run_population(configs, tmp_path, devices=jax.devices()[:1])
  assert results[0]['step'] == 8 and 0.0 <= results[0]['accuracy'] <= 1.0
  assert results[1] is None
  assert os.path.exists(os.path.join(workdirs[0], 'results.json'))
  assert not os.path.exists(os.path.join(workdirs[1], 'results.json'))
  with open(os.path.join(workdirs[1], 'log.txt')) as f:
    log = f.read()
  assert 'NonFiniteError: non-finite loss or gradient at step' in log
  assert not os.path.exists(os.path.join(workdirs[1], 'checkpoints', '8'))  # no NaN best


@pytest.mark.slow
def test_killed_vectorized_sweep_resumes_to_the_uninterrupted_result(tmp_path):
  import csv  # pylint: disable=g-import-not-at-top
  import signal  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top

  from tests import _digits_run_files as files  # pylint: disable=g-import-not-at-top

  repo = files.REPO
  data_dir = tmp_path / 'data'
  files.build_digits(data_dir)
  config_file = files.write_config(
    tmp_path / 'config.py',
    data_dir,
    {
      'total_steps': 40,
      'batch_size': 16,
      'checkpoint_every': 4,
      'eval_every': 20,
      'log_every': 10,
      'eval_steps': 2,
      'schedule.warmup_steps': 4,
    },
  )
  sweep_file = files.write_sweep(
    tmp_path / 'sweep_file.py',
    config_file,
    "sweep.product({'optimizer.learning_rate': [1e-3, 3e-3]}, {'seed': [0, 1]})",
  )

  def command(workdir):
    return [
      sys.executable,
      '-m',
      'experiments.sweep',
      f'--sweep={sweep_file}',
      f'--workdir={workdir}',
      '--mode=vectorized',
      '--num_devices=2',  # the 4 members split over 2 of the 8 forced CPU devices
      '--compilation_cache_dir=off',
    ]

  env = dict(os.environ, PYTHONPATH=repo)
  killed = tmp_path / 'killed'
  process = subprocess.Popen(
    command(killed),
    cwd=repo,
    env=env,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
    start_new_session=True,
  )
  checkpoints = killed / 'population' / 'checkpoints'
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    if checkpoints.exists() and any(d.isdigit() for d in os.listdir(checkpoints)):
      break
    time.sleep(0.02)
  assert process.poll() is None, 'the sweep finished before it could be killed'
  os.killpg(process.pid, signal.SIGKILL)
  process.wait(timeout=60)
  assert not list(killed.glob('*/results.json'))

  resumed = subprocess.run(
    command(killed), cwd=repo, env=env, capture_output=True, text=True, timeout=600
  )
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert 'resumed from checkpoint step' in resumed.stdout
  straight = subprocess.run(
    command(tmp_path / 'straight'), cwd=repo, env=env, capture_output=True, text=True, timeout=600
  )
  assert straight.returncode == 0, straight.stderr[-3000:]

  rows = list(csv.DictReader((killed / 'summary.csv').read_text().splitlines()))
  reference = list(csv.DictReader((tmp_path / 'straight' / 'summary.csv').read_text().splitlines()))
  assert len(rows) == 4 and all(r['status'] == 'done' and r['step'] == '40' for r in rows)
  assert all(r['num_devices'] == '2' for r in rows)
  for row, ref in zip(rows, reference):
    for key in ('loss', 'accuracy', 'best_accuracy', 'best_step'):
      assert float(row[key]) == pytest.approx(float(ref[key]), abs=1e-6), (key, row, ref)
  assert len({r['loss'] for r in rows}) == 4  # four different members
  # A member's directory serves inference as a process-mode trial's does.
  run = train.load_run(str(killed / rows[3]['trial']), checkpoint='best')
  assert run.step == int(rows[3]['best_step'])


def test_a_subset_of_the_trials_gets_its_own_population_directory():
  from experiments import sweep  # pylint: disable=g-import-not-at-top

  trials = [sweep.Trial(i, {'seed': i}, f'/w/{i:03d}') for i in range(4)]
  assert sweep._population_dir_name(trials, trials) == 'population'  # pylint: disable=protected-access
  left = sweep._population_dir_name(trials, trials[2:])  # pylint: disable=protected-access
  assert (
    left.startswith('population-2of4-')
    and left
    != sweep._population_dir_name(  # pylint: disable=protected-access
      trials, trials[1:3]
    )
  )
