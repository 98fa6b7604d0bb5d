"""sharding.maybe_initialize_distributed: mistakes in the multi-process environment are errors
naming the variable and its value, raised before jax.distributed is called (which would abort in
C++, or wait 300 s for a peer that crashed)."""

import os
import socket
import subprocess
import sys

import jax
import pytest

from jaxseg.train import sharding

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _held_port():
  """A socket listening on every interface, and its port."""
  holder = socket.socket()
  holder.bind(('0.0.0.0', 0))
  holder.listen()
  return holder, holder.getsockname()[1]


@pytest.mark.parametrize(
  'env, pattern',
  [
    ({'JAX_COORDINATOR_ADDRESS': 'localhost'}, r"host:port .*got 'localhost'"),
    ({'JAX_COORDINATOR_ADDRESS': 'localhost:99999'}, r'\[1, 65535\].*localhost:99999'),
    ({'JAX_COORDINATOR_ADDRESS': ':1234'}, r"host:port .*got ':1234'"),
    (
      {'JAX_COORDINATOR_ADDRESS': 'localhost:1234', 'JAX_NUM_PROCESSES': '2'},
      r'JAX_PROCESS_ID is not set',
    ),
    (
      {'JAX_COORDINATOR_ADDRESS': 'localhost:1234', 'JAX_PROCESS_ID': '0'},
      r'JAX_NUM_PROCESSES is not set',
    ),
    (
      {
        'JAX_COORDINATOR_ADDRESS': 'localhost:1234',
        'JAX_NUM_PROCESSES': 'two',
        'JAX_PROCESS_ID': '0',
      },
      r"JAX_NUM_PROCESSES must be a non-negative integer, got 'two'",
    ),
    (
      {
        'JAX_COORDINATOR_ADDRESS': 'localhost:1234',
        'JAX_NUM_PROCESSES': '2',
        'JAX_PROCESS_ID': '-1',
      },
      r"JAX_PROCESS_ID must be a non-negative integer, got '-1'",
    ),
    (
      {
        'JAX_COORDINATOR_ADDRESS': 'localhost:1234',
        'JAX_NUM_PROCESSES': '2',
        'JAX_PROCESS_ID': '2',
      },
      r'JAX_PROCESS_ID must be in \[0, JAX_NUM_PROCESSES=2\), got 2',
    ),
    (
      {
        'JAX_COORDINATOR_ADDRESS': 'localhost:1234',
        'JAX_NUM_PROCESSES': '0',
        'JAX_PROCESS_ID': '0',
      },
      r'JAX_NUM_PROCESSES must be >= 1, got 0',
    ),
  ],
)
def test_malformed_environment_is_a_value_error_naming_it(env, pattern, monkeypatch):
  for name in ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID'):
    monkeypatch.delenv(name, raising=False)
  for name, value in env.items():
    monkeypatch.setenv(name, value)
  with pytest.raises(ValueError, match=pattern):
    sharding.maybe_initialize_distributed()
  assert not jax.distributed.is_initialized()


def test_process_0_with_its_port_taken_is_an_os_error_naming_the_port(monkeypatch):
  holder, port = _held_port()
  with holder:
    monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', f'localhost:{port}')
    monkeypatch.setenv('JAX_NUM_PROCESSES', '2')
    monkeypatch.setenv('JAX_PROCESS_ID', '0')
    with pytest.raises(OSError, match=rf"localhost:{port}'.*port {port}, which it cannot bind"):
      sharding.maybe_initialize_distributed()
  assert not jax.distributed.is_initialized()


def test_a_port_left_in_time_wait_by_a_previous_coordinator_is_free():
  # The previous run's coordinator (gRPC, SO_REUSEADDR) closed first: its connection waits out
  # TIME_WAIT on the port, which the next coordinator may bind again; the check must agree.
  server = socket.socket()
  server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  server.bind(('0.0.0.0', 0))
  server.listen()
  port = server.getsockname()[1]
  client = socket.create_connection(('127.0.0.1', port))
  accepted, _ = server.accept()
  accepted.close()
  client.close()
  server.close()
  with socket.socket() as plain:  # the state the check must see through
    with pytest.raises(OSError):
      plain.bind(('0.0.0.0', port))
  sharding._check_port_free(port, f'localhost:{port}')


def test_the_binary_says_so_in_one_line_with_exit_code_1(tmp_path):
  holder, port = _held_port()
  env = dict(
    os.environ,
    PYTHONPATH=ROOT,
    JAX_PLATFORMS='cpu',
    JAXSEG_DATA_DIR=str(tmp_path / 'data'),
    JAX_COORDINATOR_ADDRESS=f'localhost:{port}',
    JAX_NUM_PROCESSES='2',
    JAX_PROCESS_ID='0',
  )
  with holder:
    result = subprocess.run(
      [
        sys.executable,
        '-m',
        'experiments.main',
        '--config=experiments/configs/lenet5_digits.py',
        f'--workdir={tmp_path / "run"}',
      ],
      cwd=ROOT,
      env=env,
      capture_output=True,
      text=True,
      timeout=120,
    )
  assert result.returncode == 1, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith('error: ') and f'port {port}' in lines[-1], result.stderr[-2000:]
  assert 'Traceback' not in result.stderr


def _coordinator_env(monkeypatch, process_id):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', 'localhost:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '2')
  monkeypatch.setenv('JAX_PROCESS_ID', str(process_id))


def test_a_hostname_that_does_not_resolve_is_an_os_error_naming_it(monkeypatch):
  # gloo (JAX's CPU collectives) looks the hostname up; unresolved, jax fails in C++ with
  # "enforce fail ... device.cc:99 rv == 0. -2 vs 0" (seen with an /etc/hosts lacking it).
  _coordinator_env(monkeypatch, process_id=1)
  monkeypatch.setattr(socket, 'gethostname', lambda: 'no-such-host.invalid')
  with pytest.raises(
    OSError, match=r"hostname 'no-such-host.invalid' does not resolve.*/etc/hosts"
  ):
    sharding.maybe_initialize_distributed()
  assert not jax.distributed.is_initialized()


def test_the_hostname_check_passes_where_it_resolves_and_without_gloo(monkeypatch):
  monkeypatch.setattr(socket, 'gethostname', lambda: 'localhost')
  sharding._check_hostname_resolves()
  monkeypatch.setattr(socket, 'gethostname', lambda: 'no-such-host.invalid')
  before = jax.config.jax_cpu_collectives_implementation
  jax.config.update('jax_cpu_collectives_implementation', 'mpi')  # gloo's lookup is not made
  try:
    sharding._check_hostname_resolves()
  finally:
    jax.config.update('jax_cpu_collectives_implementation', before)
