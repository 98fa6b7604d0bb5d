"""benchmarks/train_step.py: variants in processes of their own, their allocator, the ratios."""

import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'benchmarks'))

import train_step  # noqa: E402

from experiments import huge_pages  # noqa: E402

OTHER_TUNABLE = 'glibc.malloc.arena_max=2'


@pytest.fixture
def tuned_environment(monkeypatch):
  """This process as a restarted binary with one more tunable of the user's own."""
  monkeypatch.setenv('GLIBC_TUNABLES', f'{OTHER_TUNABLE}:{huge_pages.TUNABLE}=1')
  monkeypatch.setenv(huge_pages.ENV_VAR, '0')


def test_default_malloc_drops_only_the_huge_pages_tunable(tuned_environment):
  assert train_step.child_environment('default')['GLIBC_TUNABLES'] == OTHER_TUNABLE


def test_huge_malloc_sets_the_tunable_once(tuned_environment):
  env = train_step.child_environment('huge')
  assert env['GLIBC_TUNABLES'] == f'{OTHER_TUNABLE}:{huge_pages.TUNABLE}=1'


def test_binaries_malloc_respects_the_opt_out(monkeypatch):
  """As a binary would: ``$JAXSEG_HUGE_PAGES=0`` keeps the default allocator."""
  monkeypatch.setattr(huge_pages, '_glibc_version', lambda: 'glibc 2.36')
  monkeypatch.setattr(huge_pages, '_read_thp_mode', lambda: 'always [madvise] never')
  monkeypatch.setenv('GLIBC_TUNABLES', OTHER_TUNABLE)
  monkeypatch.setenv(huge_pages.ENV_VAR, '0')
  assert train_step.child_environment('binaries')['GLIBC_TUNABLES'] == OTHER_TUNABLE


def test_binaries_malloc_adds_the_tunable_where_the_machine_allows(monkeypatch):
  monkeypatch.setenv('GLIBC_TUNABLES', OTHER_TUNABLE)
  monkeypatch.delenv(huge_pages.ENV_VAR, raising=False)
  monkeypatch.setattr(huge_pages, '_glibc_version', lambda: 'glibc 2.36')
  monkeypatch.setattr(huge_pages, '_read_thp_mode', lambda: 'always [madvise] never')
  env = train_step.child_environment('binaries')
  assert env['GLIBC_TUNABLES'] == f'{OTHER_TUNABLE}:{huge_pages.TUNABLE}=1'
  monkeypatch.setattr(huge_pages, '_read_thp_mode', lambda: 'always madvise [never]')
  assert train_step.child_environment('binaries')['GLIBC_TUNABLES'] == OTHER_TUNABLE


def test_unknown_malloc_is_refused():
  with pytest.raises(ValueError, match="binaries, default or huge, got 'tcmalloc'"):
    train_step.child_environment('tcmalloc')


def _measurement(step_s, batch=4):
  return {'params': 10, 'compile_s': 1.0, 'size': 8, 'batch': batch, 'step_s': step_s}


def test_ratios_are_against_the_fastest_torch_variant():
  measured = {
    'jaxseg/after': _measurement(2.0),
    'torch': _measurement(1.0),
    'torch/compile': _measurement(0.5),
  }
  rows = train_step.rows_of('vgg16', measured, dtype='float32', isolation='process')
  by_variant = {row['variant']: row for row in rows}
  assert by_variant['jaxseg/after']['vs_best_torch'] == pytest.approx(0.25)
  assert by_variant['torch']['vs_best_torch'] == pytest.approx(0.5)
  assert by_variant['torch/compile']['vs_best_torch'] == pytest.approx(1.0)
  assert by_variant['jaxseg/after']['images_per_s'] == pytest.approx(2.0)
  assert by_variant['jaxseg/after']['step_ms'] == pytest.approx(2000.0)


def test_without_torch_the_ratio_is_nan():
  rows = train_step.rows_of(
    'vgg16', {'jaxseg/after': _measurement(2.0)}, dtype='float32', isolation='shared'
  )
  assert math.isnan(rows[0]['vs_best_torch'])


def test_process_isolation_alternates_variants_and_takes_medians(monkeypatch):
  """Each pass runs every variant once, in order; the table takes each field's median."""
  calls = []
  steps = {'jaxseg/after': iter([3.0, 1.0, 2.0]), 'torch': iter([5.0, 4.0, 6.0])}

  def fake(name, key, **kwargs):
    calls.append((name, key, kwargs['malloc']))
    step_s = next(steps[key])
    return dict(_measurement(step_s), faults=10 * step_s, system_ms=step_s, device='cpu')

  monkeypatch.setattr(train_step, 'time_in_own_process', fake)
  merged = train_step.bench_in_processes(
    'resnet50',
    ['jaxseg/after', 'torch'],
    dtype='float32',
    passes=3,
    warmup=0,
    steps_=1,
    malloc='huge',
    quick=False,
  )
  assert [key for _, key, _ in calls] == ['jaxseg/after', 'torch'] * 3
  assert {malloc for *_, malloc in calls} == {'huge'}
  assert merged['jaxseg/after']['step_s'] == 2.0 and merged['jaxseg/after']['faults'] == 20.0
  assert merged['torch']['step_s'] == 5.0


@pytest.mark.parametrize(
  'argument, message',
  [
    ('--models=alexnet', "--models: unknown 'alexnet'"),
    ('--variants=middle', "--variants: unknown 'middle'"),
    ('--steps=0', '--steps: expected a count >= 1'),
    ('--passes=0', '--passes: expected a count >= 1'),
    ('--warmup=-1', '--warmup: expected a count >= 0'),
  ],
)
def test_bad_arguments_name_the_flag(argument, message, capsys):
  with pytest.raises(SystemExit):
    train_step.main([argument])
  assert message in capsys.readouterr().err


def _run_quick(*args):
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  env.pop('XLA_FLAGS', None)  # the benchmark times one device, not the suite's eight
  return subprocess.run(
    [sys.executable, os.path.join(REPO, 'benchmarks', 'train_step.py'), '--quick', *args],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
    check=True,
  )


@pytest.mark.slow  # four processes compiling narrow models, then one more: ~60 s
@pytest.mark.parametrize('isolation', ['process', 'shared'])
def test_quick_run_writes_a_row_per_variant(isolation, tmp_path):
  out = tmp_path / 'rows.json'
  _run_quick(
    '--models=resnet50', '--variants=before,after', f'--isolation={isolation}', f'--json={out}'
  )
  rows = json.loads(out.read_text())
  assert [row['variant'] for row in rows] == ['jaxseg/before', 'jaxseg/after']
  assert all(row['isolation'] == isolation and row['step_ms'] > 0 for row in rows)
  # Page faults are counted around the timed steps of a process of the variant's own.
  assert all(math.isnan(row['faults']) != (isolation == 'process') for row in rows)


def test_process_isolation_leaves_the_parent_without_a_backend():
  """The parent only orchestrates: JAX initialised there would hold a GPU's memory (75%)."""
  script = f"""
import sys
sys.path.insert(0, {os.path.join(REPO, 'benchmarks')!r})
import train_step
from jax._src import xla_bridge

def fake_child(name, key, **kwargs):
  return dict(params=1, compile_s=0.0, size=32, batch=2, step_s=0.1, faults=0.0, system_ms=0.0,
              device='fake')

train_step.time_in_own_process = fake_child
rows = train_step.main(['--quick'])
assert len(rows) == 3, rows
print('initialised' if xla_bridge.backends_are_initialized() else 'not initialised')
"""
  env = dict(os.environ, PYTHONPATH=REPO)
  result = subprocess.run(
    [sys.executable, '-c', script], env=env, capture_output=True, text=True, timeout=300
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip().splitlines()[-1] == 'not initialised'
