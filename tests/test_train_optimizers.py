"""Optimizers, schedules and the plateau rule against PyTorch and closed forms."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import base
from jaxseg.train import optimizers, promotion, schedules


def _optimizer_config(**overrides):
  config = base.get_base_config().optimizer
  config.update(overrides)
  return config


def _params(seed=0):
  rng = np.random.default_rng(seed)
  return {
    'conv': {
      'kernel': rng.normal(size=(3, 3, 2, 4)).astype(np.float32),
      'bias': rng.normal(size=(4,)).astype(np.float32),
    },
    'head': {
      'kernel': rng.normal(size=(4, 3)).astype(np.float32),
      'bias': rng.normal(size=(3,)).astype(np.float32),
    },
  }


def _grads(num_steps, seed=1):
  rng = np.random.default_rng(seed)
  return [
    jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32), _params())
    for _ in range(num_steps)
  ]


def _run_optax(tx, params, grads):
  params = jax.tree.map(jnp.asarray, params)
  state = tx.init(params)
  for g in grads:
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
  return jax.tree.map(np.asarray, params)


def _run_torch(make_optimizer, params, grads):
  torch = pytest.importorskip('torch')
  tensors = jax.tree.map(lambda p: torch.tensor(p, requires_grad=True), params)
  decay = [t for t in jax.tree.leaves(tensors) if t.ndim >= 2]
  no_decay = [t for t in jax.tree.leaves(tensors) if t.ndim < 2]
  opt = make_optimizer(torch, decay, no_decay)
  for g in grads:
    for t, gt in zip(jax.tree.leaves(tensors), jax.tree.leaves(g)):
      t.grad = torch.tensor(gt)
    opt.step()
  return jax.tree.map(lambda t: t.detach().numpy(), tensors)


@pytest.mark.parametrize(
  'name,nesterov', [('sgd', False), ('sgd', True), ('adam', False), ('adamw', False)]
)
def test_optimizer_matches_torch_with_kernel_only_weight_decay(name, nesterov):
  lr, wd = 0.05, 0.01
  config = _optimizer_config(
    name=name,
    learning_rate=lr,
    momentum=0.9,
    nesterov=nesterov,
    weight_decay=wd,
    weight_decay_mask='kernels',
  )
  tx = optimizers.make_optimizer(config, schedule=optax.constant_schedule(lr))
  params, grads = _params(), _grads(5)

  def make_torch(torch, decay, no_decay):
    groups = [{'params': decay, 'weight_decay': wd}, {'params': no_decay, 'weight_decay': 0.0}]
    if name == 'sgd':
      return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=nesterov)
    cls = torch.optim.Adam if name == 'adam' else torch.optim.AdamW
    return cls(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)

  expected = _run_torch(make_torch, params, grads)
  got = _run_optax(tx, params, grads)
  # Adam's float32 rounding differs between the libraries by ~1e-6; a wrong decay coupling would
  # differ by lr * wd * |p| ~ 5e-4.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got, expected)


def test_lr_multipliers_scale_matching_parameters_first_match_wins():
  lr = 0.1
  config = _optimizer_config(
    name='sgd', learning_rate=lr, momentum=0.0, lr_multipliers=(('head/', 10.0), ('bias$', 2.0))
  )
  tx = optimizers.make_optimizer(config, schedule=optax.constant_schedule(lr))
  params, (g,) = _params(), _grads(1)
  got = _run_optax(tx, params, [g])
  expected_mult = {'conv': {'kernel': 1.0, 'bias': 2.0}, 'head': {'kernel': 10.0, 'bias': 10.0}}
  for module in params:
    for leaf in params[module]:
      np.testing.assert_allclose(
        got[module][leaf],
        params[module][leaf] - lr * expected_mult[module][leaf] * g[module][leaf],
        rtol=1e-6,
      )


def test_lr_multiplier_labels_use_slash_paths():
  labels = optimizers.lr_multiplier_labels(_params(), (('conv/bias', 2.0),))
  assert labels == {
    'conv': {'kernel': 'x1.0', 'bias': 'x2.0'},
    'head': {'kernel': 'x1.0', 'bias': 'x1.0'},
  }


def test_gradient_clipping_by_global_norm():
  lr, clip = 1.0, 0.5
  config = _optimizer_config(name='sgd', learning_rate=lr, momentum=0.0, grad_clip_norm=clip)
  tx = optimizers.make_optimizer(config, schedule=optax.constant_schedule(lr))
  params, (g,) = _params(), _grads(1)
  norm = math.sqrt(sum(float(np.sum(x.astype(np.float64) ** 2)) for x in jax.tree.leaves(g)))
  assert norm > clip
  got = _run_optax(tx, params, [g])
  jax.tree.map(
    lambda p, gg, out: np.testing.assert_allclose(out, p - gg * clip / norm, rtol=1e-5),
    params,
    g,
    got,
  )


def test_gradient_accumulation_equals_one_step_on_the_mean_gradient():
  lr = 0.1
  accumulated = optimizers.make_optimizer(
    _optimizer_config(name='sgd', learning_rate=lr, momentum=0.9, accumulate_steps=2),
    schedule=optax.constant_schedule(lr),
  )
  plain = optimizers.make_optimizer(
    _optimizer_config(name='sgd', learning_rate=lr, momentum=0.9),
    schedule=optax.constant_schedule(lr),
  )
  params, grads = _params(), _grads(4)
  after_one = _run_optax(accumulated, params, grads[:1])
  jax.tree.map(np.testing.assert_array_equal, after_one, params)  # no update mid-accumulation
  means = [
    jax.tree.map(lambda a, b: (a + b) / 2, grads[0], grads[1]),
    jax.tree.map(lambda a, b: (a + b) / 2, grads[2], grads[3]),
  ]
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
    _run_optax(accumulated, params, grads),
    _run_optax(plain, params, means),
  )


def test_weight_decay_mask_choices():
  params = _params()
  assert optimizers.weight_decay_mask(params, mask='kernels') == {
    'conv': {'kernel': True, 'bias': False},
    'head': {'kernel': True, 'bias': False},
  }
  assert all(jax.tree.leaves(optimizers.weight_decay_mask(params, mask='all')))
  assert not any(jax.tree.leaves(optimizers.weight_decay_mask(params, mask='none')))
  with pytest.raises(ValueError, match='weight_decay_mask'):
    optimizers.weight_decay_mask(params, mask='biases')


@pytest.mark.parametrize(
  'field,value,match',
  [
    ('name', 'rmsprop', 'optimizer.name'),
    ('lr_multipliers', (('[', 2.0),), 'bad regex'),
    ('lr_multipliers', ('head',), 'pairs'),
    ('accumulate_steps', 0, 'accumulate_steps'),
    ('grad_clip_norm', -1.0, 'grad_clip_norm'),
  ],
)
def test_bad_optimizer_config_raises_naming_field(field, value, match):
  config = _optimizer_config(**{field: value})
  with pytest.raises(ValueError, match=match):
    optimizers.make_optimizer(config, schedule=optax.constant_schedule(0.1))


def _schedule_config(**overrides):
  config = base.get_base_config().schedule
  config.update(overrides)
  return config


def test_step_schedule_with_warmup():
  fn = schedules.make_schedule(
    _schedule_config(name='step', boundaries=(30, 60), warmup_steps=10, decay_factor=0.1),
    learning_rate=1.0,
    total_updates=100,
  )
  expected = {0: 0.0, 5: 0.5, 10: 1.0, 29: 1.0, 30: 0.1, 59: 0.1, 60: 0.01, 99: 0.01}
  for t, value in expected.items():
    assert float(fn(t)) == pytest.approx(value, rel=1e-5, abs=1e-7), t


def test_poly_schedule_matches_deeplab_formula():
  fn = schedules.make_schedule(
    _schedule_config(name='poly', power=0.9), learning_rate=0.01, total_updates=1000
  )
  for t in (0, 1, 250, 999, 1000):
    assert float(fn(t)) == pytest.approx(0.01 * (1 - t / 1000) ** 0.9, rel=1e-5, abs=1e-9)


def test_warmup_cosine_schedule():
  fn = schedules.make_schedule(
    _schedule_config(name='warmup_cosine', warmup_steps=10, end_value=0.0),
    learning_rate=2.0,
    total_updates=110,
  )
  assert float(fn(5)) == pytest.approx(1.0)
  for t in (10, 35, 60, 110):
    assert float(fn(t)) == pytest.approx(
      2.0 * 0.5 * (1 + math.cos(math.pi * (t - 10) / 100)), abs=1e-6
    )


def test_unknown_schedule_raises():
  with pytest.raises(ValueError, match='schedule.name'):
    schedules.make_schedule(_schedule_config(name='cyclic'), learning_rate=1.0, total_updates=10)


@pytest.mark.parametrize(
  'mode,metrics',
  [
    ('max', [0.5, 0.6, 0.6, 0.55, 0.7, 0.69, 0.69]),
    ('min', [2.0, 1.5, 1.5, 1.6, 1.0, 1.01, 1.0]),
  ],
)
def test_plateau_reduces_after_patience_evaluations_without_improvement(mode, metrics):
  tx = schedules.make_plateau(
    _schedule_config(name='plateau', patience=2, decay_factor=0.1, min_delta=1e-3)
  )
  state = tx.init(jnp.zeros(()))
  scales = []
  for m in metrics:
    state = schedules.update_plateau(tx, state, metric=m, mode=mode)
    scales.append(float(state.scale))
  # Reference written from the rule: count evaluations without improvement beyond min_delta;
  # at `patience` of them, multiply by the factor and reset the count.
  best, bad, scale, expected = None, 0, 1.0, []
  for m in metrics:
    improved = best is None or (m > best + 1e-3 if mode == 'max' else m < best - 1e-3)
    if improved:
      best, bad = m, 0
    else:
      bad += 1
      if bad == 2:
        scale, bad = scale * 0.1, 0
    expected.append(scale)
  np.testing.assert_allclose(scales, expected, rtol=1e-6)
  assert expected[-1] < 1.0  # the sequences do plateau


@pytest.mark.parametrize(
  'make,extra',
  [
    (lambda: optax.adam(0.1), {}),
    (lambda: optax.MultiSteps(optax.sgd(0.1), every_k_schedule=2), {}),
    (lambda: optax.contrib.reduce_on_plateau(patience=1), {'value': jnp.float32(0.5)}),
  ],
  ids=['adam', 'multisteps', 'plateau'],
)
def test_standard_promotion_exempts_exactly_the_wrapped_optax_transformation(make, extra):
  # These optax transformations mix a float with their int32 step count: strict promotion
  # rejects them bare; wrapped, they compute what they compute under standard promotion.
  params = {'w': jnp.array([1.0, -2.0], jnp.float32)}

  def two_steps(tx):
    state = tx.init(params)
    for _ in range(2):
      updates, state = tx.update(params, state, params, **extra)
    return updates

  with jax.numpy_dtype_promotion('standard'):
    expected = two_steps(make())
  with jax.numpy_dtype_promotion('strict'):
    with pytest.raises(jax.dtypes.TypePromotionError):
      two_steps(make())
    got = two_steps(promotion.standard_promotion(make()))
  jax.tree.map(np.testing.assert_array_equal, got, expected)


def test_standard_promotion_schedule_gives_the_standard_values_under_strict():
  # optax's cosine schedule takes min(int32 count, float decay steps): strict rejects it bare.
  make = lambda: optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=2, decay_steps=10)
  counts = jnp.arange(12, dtype=jnp.int32)
  with jax.numpy_dtype_promotion('standard'):
    expected = jax.vmap(make())(counts)
  with jax.numpy_dtype_promotion('strict'):
    with pytest.raises(jax.dtypes.TypePromotionError):
      jax.vmap(make())(counts)
    got = jax.vmap(promotion.standard_promotion_schedule(make()))(counts)
  np.testing.assert_array_equal(got, expected)
