"""``config.init_from``: warm starts from real Orbax checkpoints of tiny runs and from
torchvision-layout state dicts written with NumPy."""

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _train_fixtures as fx
from jaxseg.train import checkpoints
from jaxseg.train import init_from
from jaxseg.train.state import create_train_state


class TinyNetPlus(nn.Module):
  """TinyNet with a different head width (shape mismatch) and a zero-initialised extra layer."""

  num_classes: int = fx.NUM_CLASSES + 2
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, *, train: bool = False):
    x = nn.Conv(4, (3, 3), dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, dtype=self.dtype)(x)
    x = nn.relu(x).mean(axis=(1, 2))
    extra = nn.Dense(3, kernel_init=nn.initializers.zeros, name='extra')(x)
    return nn.Dense(self.num_classes, dtype=self.dtype)(x) + extra.sum(), {}


def _flat(tree):
  return {'/'.join(k): np.asarray(v) for k, v in flax.traverse_util.flatten_dict(tree).items()}


@pytest.fixture(scope='module')
def source_run(tmp_path_factory):
  """A real 2-step run of TinyNet (8 devices) and its final params and batch_stats."""
  workdir = str(tmp_path_factory.mktemp('source_run'))
  config = fx.tiny_config(total_steps=2, eval_every=2, checkpoint_every=2)
  fx.run_tiny(config, workdir)
  ckpt = checkpoints.Checkpointer(
    f'{workdir}/checkpoints', keep=3, best_metric='accuracy', best_mode='max'
  )
  try:
    state = ckpt.restore_state_tree(2)
  finally:
    ckpt.close()
  return workdir, _flat(state['params']), _flat(state['batch_stats'])


def test_source_paths_resolve(source_run):
  workdir, _, _ = source_run
  expected = f'{workdir}/checkpoints/2/state'
  assert init_from.checkpoint_state_dir(workdir) == expected
  assert init_from.checkpoint_state_dir(f'{workdir}/checkpoints') == expected
  assert init_from.checkpoint_state_dir(f'{workdir}/checkpoints/2') == expected
  with pytest.raises(FileNotFoundError, match=r"init_from='/nonexistent/run' does not exist"):
    init_from.checkpoint_state_dir('/nonexistent/run')
  with pytest.raises(FileNotFoundError, match=r'holds no complete checkpoint'):
    init_from.checkpoint_state_dir(f'{workdir}/tb')


def test_restores_matching_entries_and_reports_the_rest(source_run):
  workdir, source_params, source_stats = source_run
  model = TinyNetPlus()
  fresh = dict(model.init(jax.random.key(7), jnp.zeros((1, *fx.IMAGE_SHAPE))))
  merged, report = init_from.init_variables_from(
    workdir, fresh, model=model, input_shape=fx.IMAGE_SHAPE
  )
  params, stats = _flat(merged['params']), _flat(merged['batch_stats'])
  fresh_params = _flat(fresh['params'])
  for name in ('Conv_0/kernel', 'Conv_0/bias', 'BatchNorm_0/scale', 'BatchNorm_0/bias'):
    np.testing.assert_array_equal(params[name], source_params[name])
    assert not np.array_equal(params[name], fresh_params[name])  # the copy is not vacuous
  for name in ('BatchNorm_0/mean', 'BatchNorm_0/var'):
    np.testing.assert_array_equal(stats[name], source_stats[name])
  # Different head width: skipped, keeps its fresh initialisation.
  np.testing.assert_array_equal(params['Dense_0/kernel'], fresh_params['Dense_0/kernel'])
  # New layer: equals its initialiser (zeros).
  np.testing.assert_array_equal(params['extra/kernel'], np.zeros((4, 3)))
  status = {e.path: e.status for e in report.entries}
  assert status == {
    'params/BatchNorm_0/bias': 'restored',
    'params/BatchNorm_0/scale': 'restored',
    'params/Conv_0/bias': 'restored',
    'params/Conv_0/kernel': 'restored',
    'params/Dense_0/bias': 'skipped',
    'params/Dense_0/kernel': 'skipped',
    'params/extra/bias': 'new',
    'params/extra/kernel': 'new',
    'batch_stats/BatchNorm_0/mean': 'restored',
    'batch_stats/BatchNorm_0/var': 'restored',
  }
  table = init_from.format_report(report)
  assert '6 restored, 2 new, 2 skipped (shape mismatch)' in table
  assert 'params/Dense_0/kernel  source (4, 5) -> model (4, 7)' in table


def test_nothing_matching_is_an_error(source_run):
  workdir, _, _ = source_run

  class Other(nn.Module):
    @nn.compact
    def __call__(self, x, *, train=False):
      return nn.Dense(2, name='unrelated')(x.mean((1, 2))), {}

  fresh = dict(Other().init(jax.random.key(0), jnp.zeros((1, *fx.IMAGE_SHAPE))))
  with pytest.raises(ValueError, match=r'no parameter or batch statistic matches'):
    init_from.init_variables_from(workdir, fresh, model=Other(), input_shape=fx.IMAGE_SHAPE)


def test_loop_warm_starts_then_resumes_its_own_checkpoint(source_run, tmp_path, capsys):
  workdir, source_params, _ = source_run
  # Learning rate 0: after one step the params still hold what init_from put there.
  config = fx.tiny_config(
    total_steps=1, eval_every=1, checkpoint_every=1, log_every=1, init_from=workdir
  )
  config.optimizer.learning_rate = 0.0
  config.optimizer.momentum = 0.0
  fx.run_tiny(config, str(tmp_path), model=TinyNetPlus())
  log = capsys.readouterr().err
  assert f'init_from {workdir}: 6 restored, 2 new, 2 skipped' in log
  ckpt = checkpoints.Checkpointer(
    str(tmp_path / 'checkpoints'), keep=3, best_metric='accuracy', best_mode='max'
  )
  try:
    params = _flat(ckpt.restore_state_tree(1)['params'])
  finally:
    ckpt.close()
  np.testing.assert_array_equal(params['Conv_0/kernel'], source_params['Conv_0/kernel'])
  np.testing.assert_array_equal(params['extra/kernel'], np.zeros((4, 3)))
  # The workdir now has a checkpoint: a second start resumes it and never reads init_from.
  config.total_steps = 2
  config.init_from = '/nonexistent/run'
  fx.run_tiny(config, str(tmp_path), model=TinyNetPlus())
  assert 'resumed from checkpoint step 1' in capsys.readouterr().err


def test_missing_source_fails_before_training(tmp_path):
  config = fx.tiny_config(total_steps=1, init_from=str(tmp_path / 'missing'))
  with pytest.raises(FileNotFoundError, match=r'does not exist'):
    fx.run_tiny(config, str(tmp_path / 'run'))


def test_fcn16s_from_fcn32s_checkpoint(tmp_path):
  """The FCN recipe: every FCN-32s layer is restored, the new score_pool4 stays zero."""
  from jaxseg.models import get_model  # pylint: disable=g-import-not-at-top

  kwargs = dict(num_classes=3, width_divisor=16, fc_features=64)
  x = jnp.zeros((1, 32, 32, 3))
  fcn32 = get_model('fcn32s', **kwargs)
  variables = dict(fcn32.init(jax.random.key(1), x))
  tx = optax.sgd(0.1)
  state = create_train_state(
    variables=variables,
    tx=tx,
    plateau_tx=optax.contrib.reduce_on_plateau(),
    rng=jax.random.key_data(jax.random.key(0)),
  )
  ckpt = checkpoints.Checkpointer(
    str(tmp_path / 'fcn32s' / 'checkpoints'), keep=1, best_metric='mean_iou', best_mode='max'
  )
  try:
    ckpt.save(5, state, fx.ArrayIterator(*fx.make_dataset(8), global_batch_size=8, seed=0))
  finally:
    ckpt.close()
  fcn16 = get_model('fcn16s', **kwargs)
  fresh = dict(fcn16.init(jax.random.key(2), x))
  merged, report = init_from.init_variables_from(
    str(tmp_path / 'fcn32s'), fresh, model=fcn16, input_shape=(32, 32, 3)
  )
  source, params = _flat(variables['params']), _flat(merged['params'])
  assert set(source) <= set(params)
  for name, value in source.items():
    np.testing.assert_array_equal(params[name], value, err_msg=name)
  new = sorted(e.path for e in report.entries if e.status == 'new')
  assert new and all(p.startswith('params/score_pool4/') for p in new), new
  for path in new:
    np.testing.assert_array_equal(params[path.split('/', 1)[1]], 0.0)
  assert report.count('skipped') == 0


# ---- torchvision ------------------------------------------------------------------------------


def _resnet10_torchvision_state(width, num_classes=1000, seed=0):
  """A torchvision ResNet state dict (BasicBlock, one block per stage) written with NumPy:
  names ``conv1.weight``, ``bn1.running_mean``, ``layer2.0.downsample.0.weight`` ... shapes OIHW."""
  rng = np.random.default_rng(seed)
  state = {}

  def conv(name, out, inp, k):
    state[f'{name}.weight'] = rng.standard_normal((out, inp, k, k)).astype(np.float32)

  def bn(name, c):
    state[f'{name}.weight'] = rng.uniform(0.5, 1.5, c).astype(np.float32)
    state[f'{name}.bias'] = rng.standard_normal(c).astype(np.float32)
    state[f'{name}.running_mean'] = rng.standard_normal(c).astype(np.float32)
    state[f'{name}.running_var'] = rng.uniform(0.5, 2.0, c).astype(np.float32)
    state[f'{name}.num_batches_tracked'] = np.array(10, np.int64)

  conv('conv1', width, 3, 7)
  bn('bn1', width)
  inp = width
  for stage in range(1, 5):
    out = width * 2 ** (stage - 1)
    conv(f'layer{stage}.0.conv1', out, inp, 3)
    bn(f'layer{stage}.0.bn1', out)
    conv(f'layer{stage}.0.conv2', out, out, 3)
    bn(f'layer{stage}.0.bn2', out)
    if stage > 1:
      conv(f'layer{stage}.0.downsample.0', out, inp, 1)
      bn(f'layer{stage}.0.downsample.1', out)
    inp = out
  state['fc.weight'] = rng.standard_normal((num_classes, inp)).astype(np.float32)
  state['fc.bias'] = rng.standard_normal(num_classes).astype(np.float32)
  return state


def test_torchvision_npz_into_segmentation_backbone(tmp_path):
  from jaxseg.models import get_model  # pylint: disable=g-import-not-at-top

  state = _resnet10_torchvision_state(4)
  path = str(tmp_path / 'resnet10.npz')
  np.savez(path, **state)
  model = get_model(
    'fcn32s',
    backbone='resnet18',
    width_divisor=16,
    num_classes=3,
    backbone_options={'stage_sizes': (1, 1, 1, 1)},
  )
  fresh = dict(model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  merged, report = init_from.init_variables_from(path, fresh, model=model, input_shape=(32, 32, 3))
  params, stats = merged['params']['backbone'], merged['batch_stats']['backbone']
  # OIHW -> HWIO, batch-norm weight -> scale, running statistics -> batch_stats.
  np.testing.assert_array_equal(
    params['conv1']['kernel'], state['conv1.weight'].transpose(2, 3, 1, 0)
  )
  np.testing.assert_array_equal(
    params['layer3_0']['downsample_conv']['kernel'],
    state['layer3.0.downsample.0.weight'].transpose(2, 3, 1, 0),
  )
  np.testing.assert_array_equal(params['layer4_0']['bn2']['scale'], state['layer4.0.bn2.weight'])
  np.testing.assert_array_equal(stats['layer2_0']['bn1']['var'], state['layer2.0.bn1.running_var'])
  # The head outside the backbone keeps its fresh (zero) initialisation.
  np.testing.assert_array_equal(
    merged['params']['score_fr']['kernel'], fresh['params']['score_fr']['kernel']
  )
  assert all(e.status == 'restored' for e in report.entries if '/backbone/' in e.path)
  assert {e.path for e in report.entries if e.status == 'new'} == {
    f'params/{"/".join(k)}'
    for k in flax.traverse_util.flatten_dict(fresh['params'])
    if k[0] != 'backbone'
  }
  assert report.unused == ('fc.bias', 'fc.weight')  # the ImageNet classifier has no place


def test_torchvision_into_a_whole_classifier_and_errors(tmp_path):
  from jaxseg.models import get_model  # pylint: disable=g-import-not-at-top

  state = _resnet10_torchvision_state(4, num_classes=6)
  path = str(tmp_path / 'resnet10.npz')
  np.savez(path, **state)
  model = get_model('resnet18', num_filters=4, stage_sizes=(1, 1, 1, 1), num_classes=6)
  fresh = dict(model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))
  merged, report = init_from.init_variables_from(path, fresh, model=model, input_shape=(32, 32, 3))
  np.testing.assert_array_equal(merged['params']['fc']['kernel'], state['fc.weight'].T)
  assert report.count('new') == report.count('skipped') == 0 and not report.unused
  with pytest.raises(ValueError, match=r'init_from_subtree=.nowhere.: ResNet has no submodule'):
    init_from.init_variables_from(
      path, fresh, model=model, subtree='nowhere', input_shape=(32, 32, 3)
    )
  with pytest.raises(FileNotFoundError, match=r'does not exist'):
    init_from.init_variables_from(
      str(tmp_path / 'x.npz'), fresh, model=model, input_shape=(32, 32, 3)
    )
