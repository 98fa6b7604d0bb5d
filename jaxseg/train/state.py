"""The train state: one pytree holding everything a resumed run needs.

``step`` counts train-step calls (micro-batches when gradients are accumulated). ``rng`` is never
split in place: the step folds ``step`` into it, so a resumed run draws the same dropout masks as an
uninterrupted one. ``plateau`` is the state of ``optax.contrib.reduce_on_plateau``; its ``scale``
multiplies every update and is changed only at evaluation (see ``jaxseg.train.schedules``).
"""

import math
from typing import Any

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


def count_params(params: Any) -> int:
  """Returns the number of scalars in a parameter pytree (works on ``ShapeDtypeStruct`` leaves)."""
  return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(params))
