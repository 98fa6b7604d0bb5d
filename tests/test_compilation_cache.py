"""experiments.compilation_cache: JAX's persistent cache, on by default for the binaries."""

import jax
import jax.numpy as jnp
import pytest

from experiments import compilation_cache

_OPTIONS = (
  'jax_enable_compilation_cache',
  'jax_compilation_cache_dir',
  'jax_persistent_cache_min_compile_time_secs',
  'jax_persistent_cache_min_entry_size_bytes',
)


@pytest.fixture(autouse=True)
def _restore_jax_config():
  saved = {name: getattr(jax.config, name) for name in _OPTIONS}
  yield
  for name, value in saved.items():
    jax.config.update(name, value)


def test_compiled_programs_are_written_and_off_disables(tmp_path):
  cache = tmp_path / 'xla'
  assert compilation_cache.enable(str(cache)) == str(cache)
  jax.jit(lambda x: jnp.cos(x) * 3.0 + 1.25)(jnp.arange(5.0)).block_until_ready()
  assert any(p.name.endswith('-cache') for p in cache.iterdir())
  assert compilation_cache.enable('off') is None
  assert not jax.config.jax_enable_compilation_cache


def test_default_directory(monkeypatch, tmp_path):
  monkeypatch.setenv(compilation_cache.ENV_VAR, str(tmp_path / 'env'))
  assert compilation_cache.default_dir() == str(tmp_path / 'env')
  monkeypatch.delenv(compilation_cache.ENV_VAR)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert compilation_cache.default_dir() == str(tmp_path / 'xdg' / 'jaxseg' / 'xla')
  monkeypatch.setenv(compilation_cache.ENV_VAR, 'off')
  assert compilation_cache.enable() is None
