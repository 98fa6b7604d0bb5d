"""The train state: one pytree holding everything a resumed run needs.

``step`` counts train-step calls (micro-batches when gradients are accumulated). ``rng`` is never
split in place: the step folds ``step`` into it, so a resumed run draws the same dropout masks as an
uninterrupted one. ``plateau`` is the state of ``optax.contrib.reduce_on_plateau``; its ``scale``
multiplies every update and is changed only at evaluation (see ``jaxseg.train.schedules``).
"""

import math
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  """Parameters, normalisation statistics, optimizer state, step and key of a training run.

  Attributes:
    step: int32 scalar, number of train steps taken.
    params: the model's ``'params'`` collection (float32).
    batch_stats: the model's ``'batch_stats'`` collection, ``{}`` for models without BatchNorm.
    opt_state: the optax optimizer state.
    plateau: ``optax.contrib.ReduceLROnPlateauState``; ``plateau.scale`` scales every update.
    rng: the run's base PRNG key (raw uint32 key data, so it checkpoints as a plain array).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: Any
  plateau: Any
  rng: jax.Array

  def variables(self) -> dict[str, Any]:
    """Returns the variables dict for ``model.apply``."""
    variables = {'params': self.params}
    if self.batch_stats:
      variables['batch_stats'] = self.batch_stats
    return variables


def create_train_state(
  *,
  variables: dict[str, Any],
  tx: optax.GradientTransformation,
  plateau_tx: optax.GradientTransformationExtraArgs,
  rng: jax.Array,
) -> TrainState:
  """Builds the initial state from freshly initialised model variables.

  Args:
    variables: the output of ``model.init``: ``{'params': ..., 'batch_stats': ...?}``.
    tx: the optimizer.
    plateau_tx: ``optax.contrib.reduce_on_plateau(...)`` (see ``schedules.make_plateau``).
    rng: a raw uint32 PRNG key, shape ``(2,)``.

  Returns:
    A :class:`TrainState` at step 0.
  """
  params = variables['params']
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get('batch_stats', {}),
    opt_state=tx.init(params),
    plateau=plateau_tx.init(jnp.zeros((), jnp.float32)),
    rng=rng,
  )


def init_train_state(
  *,
  model: Any,
  input_shape: tuple[int, int, int],
  dtype: Any,
  seed: Any,
  tx: optax.GradientTransformation,
  plateau_tx: optax.GradientTransformationExtraArgs,
) -> TrainState:
  """Initialises the model from ``seed`` and returns its :class:`TrainState` at step 0.

  The key ``jax.random.key(seed)`` initialises the parameters (and any ``'dropout'`` use during
  ``init``); the state's ``rng``, from which the train step folds each step's dropout key, is
  ``fold_in(key, 1)``. One definition for a single run and for every member of a population
  (``seed`` may be traced there), so both initialise the same way.

  Args:
    model: a Flax module, ``init(rngs, images, train=False)``.
    input_shape: ``(H, W, C)`` of one image.
    dtype: the compute dtype of the dummy input.
    seed: an int (or a traced int32 scalar).
    tx: the optimizer.
    plateau_tx: ``optax.contrib.reduce_on_plateau(...)``.

  Returns:
    The fresh state.
  """
  rng = jax.random.key(seed)
  variables = model.init(
    {'params': rng, 'dropout': rng}, jnp.zeros((1, *input_shape), dtype), train=False
  )
  state_rng = jax.random.key_data(jax.random.fold_in(rng, 1))
  return create_train_state(variables=dict(variables), tx=tx, plateau_tx=plateau_tx, rng=state_rng)


# XLA's backend optimisation level for the state's initialisation on CPUs. The initialiser runs
# once per run, and the backend's (LLVM's) optimisation is most of its compile time: compiled at
# level 1 instead of the default, with identical run time and bit-identical states (issue 16,
# 2 CPU cores, cold cache): LeNet-5 1.38 -> 0.40 s, a population of 8 LeNet-5s 3.2 -> 0.56 s,
# FCN-8s at 64x64 (the demo) 3.60 -> 0.88 s, ResNet-50 4.72 -> 2.92 s, DeepLabV3 8.13 -> 6.00 s.
# Level 0 compiles a little faster still but runs the initialiser 5x slower. Not measured on
# GPUs or TPUs, which keep their default.
INIT_COMPILER_OPTIONS = {'xla_backend_optimization_level': 1}


def jit_init(init: Callable[..., TrainState], **jit_kwargs) -> Callable[..., TrainState]:
  """``jax.jit(init, **jit_kwargs)`` compiled for a program that runs once.

  On CPUs the program is compiled with :data:`INIT_COMPILER_OPTIONS` (the backend's cheaper
  optimisation level: the same values, a fifth to three quarters of the compile time, see
  there); elsewhere it is ``jax.jit``'s own compilation. Each call lowers and compiles again
  (the persistent compilation cache, keyed on the options too, serves a repeat), so call the
  result once per run, as the training loops do.

  Args:
    init: the state initialiser, e.g. a closure over :func:`init_train_state`.
    **jit_kwargs: passed to ``jax.jit`` (``out_shardings``, ...).

  Returns:
    A function with ``init``'s signature that compiles and runs it.

  Example:
    >>> import jax.numpy as jnp
    >>> make = jit_init(lambda seed: {'w': jnp.full((2,), seed, jnp.float32)})
    >>> make(3)['w'].tolist()
    [3.0, 3.0]
  """
  jitted = jax.jit(init, **jit_kwargs)

  def compile_and_run(*args):
    lowered = jitted.lower(*args)
    on_cpu = jax.default_backend() == 'cpu'
    compiled = lowered.compile(compiler_options=INIT_COMPILER_OPTIONS if on_cpu else None)
    return compiled(*args)

  return compile_and_run


def count_params(params: Any) -> int:
  """Returns the number of scalars in a parameter pytree (works on ``ShapeDtypeStruct`` leaves)."""
  return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))
