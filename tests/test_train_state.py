"""jaxseg.train.state.jit_init: the state's initialiser compiled at the backend's cheaper level."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _train_fixtures as fx
from jaxseg.models import lenet
from jaxseg.train import population, schedules
from jaxseg.train import state as train_state


@pytest.fixture
def compile_options(monkeypatch):
  """Records the ``compiler_options`` of every ``Lowered.compile`` call while the test runs."""
  seen = []
  original = jax.stages.Lowered.compile

  def recording(self, compiler_options=None, **kwargs):
    seen.append(compiler_options)
    return original(self, compiler_options=compiler_options, **kwargs)

  monkeypatch.setattr(jax.stages.Lowered, 'compile', recording)
  return seen


def _lenet_init(seed=0):
  return train_state.init_train_state(
    model=lenet.LeNet5(num_classes=10),
    input_shape=(32, 32, 3),
    dtype=jnp.float32,
    seed=seed,
    tx=optax.adam(1e-3),
    plateau_tx=schedules.make_plateau(fx.tiny_config().schedule),
  )


def test_state_is_bit_identical_to_jax_jit_and_compiled_with_the_options(compile_options):
  state = train_state.jit_init(_lenet_init)()
  assert compile_options == [train_state.INIT_COMPILER_OPTIONS]  # this machine is a CPU
  expected = jax.jit(_lenet_init)()
  leaves, expected_leaves = jax.tree.leaves(state), jax.tree.leaves(expected)
  assert len(leaves) == len(expected_leaves) > 10
  for leaf, expected_leaf in zip(leaves, expected_leaves):
    np.testing.assert_array_equal(leaf, expected_leaf)


def test_arguments_and_out_shardings_pass_through():
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ('data',))
  spread = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  width = 2 * len(jax.devices())
  make = train_state.jit_init(
    lambda seed: jax.random.normal(jax.random.key(seed), (width,)), out_shardings=spread
  )
  values = make(jnp.int32(7))
  assert values.sharding == spread
  np.testing.assert_array_equal(values, jax.random.normal(jax.random.key(7), (width,)))


def test_other_platforms_keep_their_default_compilation(monkeypatch, compile_options):
  monkeypatch.setattr(jax, 'default_backend', lambda: 'gpu')
  train_state.jit_init(lambda: jnp.zeros(3))()
  assert compile_options == [None]


def test_a_run_and_a_population_initialise_through_it(tmp_path, compile_options):
  fx.run_tiny(fx.tiny_config(total_steps=2, eval_every=2), str(tmp_path / 'run'))
  assert compile_options.count(train_state.INIT_COMPILER_OPTIONS) == 1
  configs = [fx.tiny_config(total_steps=2, eval_every=2) for _ in range(2)]
  configs[1].optimizer.learning_rate = 0.1
  images, labels = fx.make_dataset(16)
  population.run_population(
    configs,
    [str(tmp_path / 'a'), str(tmp_path / 'b')],
    str(tmp_path / 'population'),
    model=fx.TinyNet(),
    task=fx.SoftmaxTask(),
    input_shape=fx.IMAGE_SHAPE,
    make_train_iterator=lambda **kw: fx.ArrayIterator(
      images, labels, global_batch_size=8, seed=0, **kw
    ),
    make_eval_iterator=lambda **kw: fx.eval_batches(images, labels, global_batch_size=8, **kw),
    devices=jax.devices()[:1],
    print_fn=lambda line: None,
  )
  assert compile_options.count(train_state.INIT_COMPILER_OPTIONS) == 2
