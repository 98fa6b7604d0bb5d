"""The train and eval steps: pure functions of ``(state, batch)``, jitted once by the loop.

Mixed precision: the model computes in ``config.dtype`` (its ``dtype`` option); parameters, the
optimizer state, outputs handed to the task and the loss are float32.
"""

from typing import Any, Callable, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxseg.train.state import TrainState
from jaxseg.train.tasks import Task

COMPUTE_DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str) -> jnp.dtype:
  """Returns the jnp dtype for ``config.dtype``."""
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'dtype must be one of {tuple(COMPUTE_DTYPES)}, got {name!r}')
  return COMPUTE_DTYPES[name]


def _to_float32(tree: Any) -> Any:
  return jax.tree.map(
    lambda x: x.astype(jnp.float32) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree
  )


def _apply(
  model: nn.Module,
  variables: Mapping[str, Any],
  batch: Mapping[str, jax.Array],
  *,
  train: bool,
  dtype: jnp.dtype,
  dropout_rng: jax.Array | None = None,
):
  kwargs = {'train': train}
  if train:
    kwargs['rngs'] = {'dropout': dropout_rng}
    kwargs['mutable'] = ['batch_stats']
  result = model.apply(variables, batch['image'].astype(dtype), **kwargs)
  if train:
    (outputs, endpoints), new_variables = result
  else:
    (outputs, endpoints), new_variables = result, {}
  return _to_float32(outputs), _to_float32(endpoints), new_variables


def make_train_step(
  *,
  model: nn.Module,
  task: Task,
  tx: optax.GradientTransformation,
  config: ml_collections.ConfigDict,
  schedule: Callable[[jax.Array], jax.Array] | None = None,
) -> Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict[str, jax.Array]]]:
  """Returns ``train_step(state, batch) -> (new_state, metrics)``.

  One step: forward in ``config.dtype`` with dropout key ``fold_in(state.rng, state.step)``, the
  task's loss in float32, gradients, the optimizer update scaled by ``state.plateau.scale``, new
  batch statistics. ``metrics`` holds the loss, the task's scalars, ``grad_norm``, ``finite``
  (False if the loss or any gradient is NaN/Inf; the loop stops on it) and, given ``schedule``,
  ``learning_rate`` (the rate after this step: ``schedule(updates) * plateau.scale``, computed on
  the device so logging it costs no host round trip).

  Args:
    model: a Flax module returning ``(outputs, endpoints)``.
    task: the bound task (loss).
    tx: the optimizer.
    config: the experiment config (``dtype``, ``optimizer.accumulate_steps``).
    schedule: the learning-rate schedule over optimizer updates, or None.

  Returns:
    The (unjitted) step function.
  """
  dtype = compute_dtype(config.dtype)
  accumulate = config.optimizer.accumulate_steps

  def train_step(state: TrainState, batch: Mapping[str, jax.Array]):
    dropout_rng = jax.random.fold_in(jax.random.wrap_key_data(state.rng), state.step)

    def loss_fn(params):
      variables = {**state.variables(), 'params': params}
      outputs, endpoints, new_variables = _apply(
        model, variables, batch, train=True, dtype=dtype, dropout_rng=dropout_rng
      )
      loss, scalars = task.loss(outputs, endpoints, batch)
      return loss.astype(jnp.float32), (scalars, new_variables)

    (loss, (scalars, new_variables)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
      state.params
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    updates = jax.tree.map(lambda u: u * state.plateau.scale.astype(u.dtype), updates)
    grad_norm = optax.tree.norm(grads)
    new_state = state.replace(
      step=state.step + 1,
      params=optax.apply_updates(state.params, updates),
      batch_stats=new_variables.get('batch_stats', state.batch_stats),
      opt_state=opt_state,
    )
    metrics = {
      'loss': loss,
      'grad_norm': grad_norm,
      **scalars,
      'finite': jnp.isfinite(loss) & jnp.isfinite(grad_norm),
    }
    if schedule is not None:
      metrics['learning_rate'] = jnp.asarray(
        schedule(new_state.step // accumulate), jnp.float32
      ) * state.plateau.scale.astype(jnp.float32)
    return new_state, metrics

  return train_step


def make_eval_step(
  *, model: nn.Module, task: Task, config: ml_collections.ConfigDict, with_outputs: bool = False
) -> Callable[[TrainState, Mapping[str, jax.Array]], Any]:
  """Returns ``eval_step(state, batch) -> sums``: the task's metric sums over the valid examples.

  Under ``jit`` over a mesh the sums are global (over every device and process); the loop adds
  them across batches and finalises once. With ``with_outputs`` the step returns ``(sums,
  outputs)``: the model's float32 outputs come with the sums, so example images cost no second
  forward pass.
  """
  dtype = compute_dtype(config.dtype)

  def eval_step(state: TrainState, batch: Mapping[str, jax.Array]):
    outputs, endpoints, _ = _apply(model, state.variables(), batch, train=False, dtype=dtype)
    sums = task.eval_sums(outputs, endpoints, batch)
    return (sums, outputs) if with_outputs else sums

  return eval_step
