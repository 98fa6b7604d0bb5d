"""Device mesh, sharding rules and global batches (``jax.jit`` + ``NamedSharding``; no ``pmap``).

The mesh has axes ``('data', 'model')``. The batch is split over ``data``. With ``mesh.model > 1``
every state leaf of rank >= 2 whose last dimension (a kernel's output channels or features) the
``model`` axis divides is split over ``model`` along it (tensor parallelism: each device of a
``model`` group holds and computes a slice of the channels; XLA inserts the collectives).
Parameters and optimizer state are otherwise replicated, except that with
``mesh.fsdp_min_size >= 0`` every state leaf with more elements than that is also split over
``data`` along its largest other divisible dimension (FSDP / ZeRO-3 style: XLA all-gathers it for
the computation and reduce-scatters its gradient).
"""

import math
import os
from typing import Any, Mapping, Sequence

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import ml_collections
import numpy as np

DATA_AXIS = 'data'
MODEL_AXIS = 'model'


def maybe_initialize_distributed() -> None:
  """Calls ``jax.distributed.initialize()`` when this process is one of several.

  Several processes are recognised by ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0)
  with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``, or by a cluster environment that
  ``jax.distributed`` detects itself (SLURM, Open MPI, Cloud TPU pods). On a single process this
  does nothing. Must run before any other JAX call (the binaries call it first, before they
  announce the platform, which lists the devices); a second call is a no-op. On CPU, processes
  exchange data with gloo.
  """
  if jax.distributed.is_initialized():
    return
  address = os.environ.get('JAX_COORDINATOR_ADDRESS')
  slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  mpi = int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1
  tpu_pod = ',' in os.environ.get('TPU_WORKER_HOSTNAMES', '')
  if address:
    num_processes = os.environ.get('JAX_NUM_PROCESSES')
    process_id = os.environ.get('JAX_PROCESS_ID')
    if num_processes is None or process_id is None:
      raise ValueError(
        'JAX_COORDINATOR_ADDRESS is set: also set JAX_NUM_PROCESSES and '
        'JAX_PROCESS_ID for every process'
      )
    jax.distributed.initialize(
      address, num_processes=int(num_processes), process_id=int(process_id)
    )
  elif slurm or mpi or tpu_pod:
    jax.distributed.initialize()
  else:
    return
  logging.info('jax.distributed: process %d of %d', jax.process_index(), jax.process_count())


def make_mesh(
  mesh_config: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None
) -> Mesh:
  """Returns a ``(data, model)`` mesh over ``devices`` (default: all devices of all processes).

  Args:
    mesh_config: ``config.mesh`` with ``data`` and ``model`` axis sizes; ``-1`` in one of them
      means "every device not used by the other".
    devices: the devices to use.

  Returns:
    A ``jax.sharding.Mesh`` with axis names ``('data', 'model')``.

  Raises:
    ValueError: if the sizes do not multiply to the number of devices.

  Example:
    >>> make_mesh(ml_collections.ConfigDict(dict(data=-1, model=1))).axis_names
    ('data', 'model')
  """
  devices = list(jax.devices() if devices is None else devices)
  n = len(devices)
  data, model = int(mesh_config.get('data', -1)), int(mesh_config.get('model', 1))
  if data == -1 and model == -1:
    raise ValueError('mesh.data and mesh.model cannot both be -1')
  if data == -1:
    data = n // model if model > 0 and n % model == 0 else 0
  if model == -1:
    model = n // data if data > 0 and n % data == 0 else 0
  if data < 1 or model < 1 or data * model != n:
    raise ValueError(
      f'mesh.data={mesh_config.get("data")} x mesh.model={mesh_config.get("model")} '
      f'must multiply to the number of devices, {n}'
    )
  return Mesh(np.asarray(devices).reshape(data, model), (DATA_AXIS, MODEL_AXIS))


def _leaf_spec(shape: tuple[int, ...], *, data_size: int, model_size: int, fsdp_min_size: int) -> P:
  spec = [None] * len(shape)
  if model_size > 1 and len(shape) >= 2 and shape[-1] % model_size == 0:
    spec[-1] = MODEL_AXIS
  if fsdp_min_size >= 0 and math.prod(shape) > fsdp_min_size and data_size > 1:
    # Largest free dimension divisible by the data axis; ties go to the last.
    candidates = [(d, i) for i, d in enumerate(shape) if d % data_size == 0 and spec[i] is None]
    if candidates:
      spec[max(candidates)[1]] = DATA_AXIS
  return P(*spec) if any(spec) else P()


def state_shardings(abstract_state: Any, mesh: Mesh, *, fsdp_min_size: int = -1) -> Any:
  """Returns a ``NamedSharding`` for every leaf of a (shape-only) state pytree.

  Args:
    abstract_state: pytree of ``jax.ShapeDtypeStruct`` (from ``jax.eval_shape``).
    mesh: the mesh.
    fsdp_min_size: leaves with more elements are split over ``data``; ``-1``: none are.

  Returns:
    A pytree of ``NamedSharding`` with the structure of ``abstract_state``.
  """
  data_size, model_size = mesh.shape[DATA_AXIS], mesh.shape[MODEL_AXIS]
  return jax.tree.map(
    lambda x: NamedSharding(
      mesh,
      _leaf_spec(
        tuple(x.shape), data_size=data_size, model_size=model_size, fsdp_min_size=fsdp_min_size
      ),
    ),
    abstract_state,
  )


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Returns the sharding of batch arrays: leading (batch) axis split over ``data``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  """Returns the fully replicated sharding on ``mesh``."""
  return NamedSharding(mesh, P())


def local_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  """Returns this process's share of the global batch, checking it divides evenly.

  Raises:
    ValueError: if ``global_batch_size`` is not divisible by the data axis size.
  """
  data_size = mesh.shape[DATA_AXIS]
  if global_batch_size % data_size:
    raise ValueError(
      f'batch_size={global_batch_size} must be divisible by the mesh data axis size {data_size}'
    )
  return global_batch_size // jax.process_count()


def make_global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
  """Assembles each process's slice of the batch into global arrays sharded over ``data``.

  Args:
    local_batch: dict of numpy arrays whose leading axis is this process's slice.
    mesh: the mesh.

  Returns:
    Dict of ``jax.Array`` with leading axis ``process_count * local size``.
  """
  sharding = batch_sharding(mesh)
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
    for k, v in local_batch.items()
  }
