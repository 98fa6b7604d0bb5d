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

import errno
import math
import os
import socket
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

  Raises:
    ValueError: a malformed ``JAX_COORDINATOR_ADDRESS``, or ``JAX_NUM_PROCESSES`` /
      ``JAX_PROCESS_ID`` missing, not integers or out of range.
    OSError: in process 0, when the coordinator's port cannot be bound (another program holds
      it); jax.distributed would otherwise crash there and leave the others waiting. In any
      process, when this machine's hostname does not resolve and JAX's CPU collectives are gloo's
      (the default): gloo looks it up, and fails with an ``enforce fail ... rv == 0. -2 vs 0``.

  Example:
    >>> import os
    >>> 'JAX_COORDINATOR_ADDRESS' in os.environ  # one process: nothing to initialise
    False
    >>> maybe_initialize_distributed()
  """
  if jax.distributed.is_initialized():
    return
  address = os.environ.get('JAX_COORDINATOR_ADDRESS')
  slurm = int(os.environ.get('SLURM_NTASKS', '1')) > 1
  mpi = int(os.environ.get('OMPI_COMM_WORLD_SIZE', '1')) > 1
  tpu_pod = ',' in os.environ.get('TPU_WORKER_HOSTNAMES', '')
  if address:
    port, num_processes, process_id = _coordinator_settings(address)
    if process_id == 0:
      _check_port_free(port, address)
    _check_hostname_resolves()
    jax.distributed.initialize(address, num_processes=num_processes, process_id=process_id)
  elif slurm or mpi or tpu_pod:
    _check_hostname_resolves()
    jax.distributed.initialize()
  else:
    return
  logging.info('jax.distributed: process %d of %d', jax.process_index(), jax.process_count())


def _coordinator_settings(address: str) -> tuple[int, int, int]:
  """``(port, num_processes, process_id)`` from the environment, checked: ValueError naming the
  variable and its value otherwise (jax.distributed itself would abort in C++ or wait)."""
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ValueError(
      f'JAX_COORDINATOR_ADDRESS must be host:port with a port in [1, 65535], got {address!r}.'
    )
  values = {}
  for name in ('JAX_NUM_PROCESSES', 'JAX_PROCESS_ID'):
    value = os.environ.get(name)
    if value is None:
      raise ValueError(
        'JAX_COORDINATOR_ADDRESS is set: also set JAX_NUM_PROCESSES and JAX_PROCESS_ID for '
        f'every process ({name} is not set).'
      )
    if not value.strip().isdigit():
      raise ValueError(f'{name} must be a non-negative integer, got {value!r}.')
    values[name] = int(value)
  num_processes, process_id = values['JAX_NUM_PROCESSES'], values['JAX_PROCESS_ID']
  if num_processes < 1:
    raise ValueError(f'JAX_NUM_PROCESSES must be >= 1, got {num_processes}.')
  if process_id >= num_processes:
    raise ValueError(
      f'JAX_PROCESS_ID must be in [0, JAX_NUM_PROCESSES={num_processes}), got {process_id}.'
    )
  return int(port), num_processes, process_id


def _check_port_free(port: int, address: str) -> None:
  """OSError when process 0 could not host the coordinator on ``port``.

  Process 0 serves the coordinator on ``[::]:port`` (every interface); when that port is taken
  jax 0.10 kills the process with a segmentation fault and the other processes wait for it until
  their initialization timeout (300 s). This check turns the usual case, a port still held by
  another program, into an error naming it (a program taking the port after the check can still
  race it).
  """
  families = [(socket.AF_INET, '0.0.0.0')] + ([(socket.AF_INET6, '::')] if socket.has_ipv6 else [])
  for family, host in families:
    try:
      with socket.socket(family) as probe:
        # As the coordinator's gRPC server does: a port left in TIME_WAIT by the previous run's
        # coordinator is free to it, and must be to this probe.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as e:
      if e.errno == errno.EAFNOSUPPORT:
        continue  # no IPv6 on this machine: the IPv4 probe decides
      raise OSError(
        e.errno,
        f'JAX_COORDINATOR_ADDRESS={address!r}: process 0 hosts the coordinator on port {port}, '
        f'which it cannot bind ({e.strerror}); choose a free port, or stop the program holding '
        f"it (ss -ltnp 'sport = :{port}').",
      ) from e


def _check_hostname_resolves() -> None:
  """OSError when gloo, JAX's CPU collectives in a multi-process run, could not start here.

  Every process of a multi-process run builds a CPU client whose collectives are gloo's (also
  beside GPUs), and gloo's TCP transport binds to the address this machine's hostname resolves
  to. Where it resolves to nothing (a container whose /etc/hosts lacks it), jax 0.10-0.12 fail
  in C++ with ``[enforce fail at .../gloo/transport/tcp/device.cc:99] rv == 0. -2 vs 0``.
  """
  if jax.config.jax_cpu_collectives_implementation != 'gloo':
    return
  hostname = socket.gethostname()
  try:
    socket.getaddrinfo(hostname, None)
  except socket.gaierror as e:
    raise OSError(
      f"this machine's hostname {hostname!r} does not resolve ({e.strerror}): the CPU "
      'collectives of a multi-process JAX run (gloo) need it; add it to /etc/hosts (e.g. '
      f"'127.0.0.1 {hostname}' for processes on this machine) or to DNS."
    ) from e


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
