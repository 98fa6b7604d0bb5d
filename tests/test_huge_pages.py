"""experiments.huge_pages: when the binaries restart with malloc on transparent huge pages."""

import os
import subprocess
import sys
import textwrap

import pytest

from experiments import huge_pages

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MADVISE = 'always [madvise] never'
GLIBC = 'glibc 2.36'


def _env(environ, thp_mode=MADVISE, glibc_version=GLIBC):
  return huge_pages.environment_with_huge_pages(
    environ, thp_mode=thp_mode, glibc_version=glibc_version
  )


def test_adds_the_tunable_and_keeps_the_rest():
  env = _env({'PATH': '/bin', 'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2'})
  assert env == {
    'PATH': '/bin',
    'GLIBC_TUNABLES': 'glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1',
  }
  assert _env({})['GLIBC_TUNABLES'] == 'glibc.malloc.hugetlb=1'


@pytest.mark.parametrize(
  'environ, thp_mode, glibc_version',
  [
    ({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'}, MADVISE, GLIBC),  # restarted already
    ({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=0'}, MADVISE, GLIBC),  # the user's choice
    ({'JAXSEG_HUGE_PAGES': '0'}, MADVISE, GLIBC),
    ({'JAXSEG_HUGE_PAGES': 'Off'}, MADVISE, GLIBC),
    ({}, '[always] madvise never', GLIBC),  # every process has huge pages already
    ({}, 'always madvise [never]', GLIBC),
    ({}, '', GLIBC),  # no transparent huge pages (not Linux, or an old kernel)
    ({}, MADVISE, 'glibc 2.34'),  # the tunable came in 2.35
    ({}, MADVISE, 'glibc 1.99'),
    ({}, MADVISE, ''),  # musl, macOS
    ({}, MADVISE, 'glibc unknown'),
  ],
)
def test_no_restart_where_it_would_not_help(environ, thp_mode, glibc_version):
  assert _env(environ, thp_mode, glibc_version) is None


def test_newer_glibc_and_a_value_that_is_not_off():
  assert _env({}, glibc_version='glibc 2.35') is not None
  assert _env({}, glibc_version='glibc 3.0') is not None
  assert _env({'JAXSEG_HUGE_PAGES': '1'}) is not None


def _run(script: str, env: dict) -> str:
  result = subprocess.run(
    [sys.executable, '-c', textwrap.dedent(script)],
    env=env,
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert result.returncode == 0, result.stderr
  return result.stdout


def _clean_env() -> dict:
  env = {k: v for k, v in os.environ.items() if k not in ('GLIBC_TUNABLES', huge_pages.ENV_VAR)}
  env['PYTHONPATH'] = os.pathsep.join(filter(None, [REPO, env.get('PYTHONPATH', '')]))
  return env


needs_madvise_thp = pytest.mark.skipif(
  huge_pages.environment_with_huge_pages(_clean_env()) is None,
  reason='needs glibc >= 2.35 and transparent huge pages in madvise mode',
)


@needs_madvise_thp
def test_a_binary_restarts_once_as_the_same_process(tmp_path):
  """Run as a program: one restart (the first line twice, not more), same pid, tunable set."""
  program = tmp_path / 'binary.py'
  program.write_text(
    textwrap.dedent(
      """
      import os
      print('start', os.getpid(), flush=True)
      from experiments import huge_pages
      huge_pages.restart_with_huge_pages()
      print('tunables', os.environ.get('GLIBC_TUNABLES'))
      """
    )
  )
  out = subprocess.run(
    [sys.executable, str(program), '--flag=1'],
    env=_clean_env(),
    capture_output=True,
    text=True,
    timeout=60,
    check=True,
  ).stdout.splitlines()
  assert len(out) == 3 and out[0] == out[1] and out[0].startswith('start ')
  assert out[2] == 'tunables glibc.malloc.hugetlb=1'
  opted_out = subprocess.run(
    [sys.executable, str(program)],
    env=dict(_clean_env(), JAXSEG_HUGE_PAGES='0'),
    capture_output=True,
    text=True,
    timeout=60,
    check=True,
  ).stdout.splitlines()
  assert len(opted_out) == 2 and opted_out[1] == 'tunables None'


@needs_madvise_thp
def test_the_tunable_cuts_page_faults_of_freed_and_reallocated_blocks():
  """What the module is for: a 64 MiB block freed and allocated again, as XLA's temporaries are.

  glibc hands a freed block that large back to the kernel, so each allocation faults it in
  again: 164k faults for the ten blocks without the tunable, 5.4k with it (measured here).
  """
  # Through malloc itself: numpy's own allocator already asks for huge pages for large arrays.
  script = """
    import ctypes, resource
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 2**20
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
      block = libc.malloc(size)
      ctypes.memset(block, 1, size)
      libc.free(block)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
  """
  default = int(_run(script, _clean_env()))
  huge = int(_run(script, dict(_clean_env(), GLIBC_TUNABLES='glibc.malloc.hugetlb=1')))
  assert default > 10 * 16000 * 0.9  # 10 blocks of 16k 4-KiB pages
  assert huge < default / 10


@needs_madvise_thp
@pytest.mark.parametrize('binary', ['experiments.main', 'experiments.sweep'])
def test_training_binaries_restart_before_importing_jax(binary):
  """Python's import log of one run: huge_pages in both process images, JAX only after both."""
  result = subprocess.run(
    [sys.executable, '-X', 'importtime', '-m', binary, '--helpshort'],
    env=_clean_env(),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=120,
  )
  imported = [line.rsplit('|', 1)[-1].strip() for line in result.stderr.splitlines()]
  restarts = [i for i, name in enumerate(imported) if name == 'experiments.huge_pages']
  assert len(restarts) == 2
  assert all(i > restarts[1] for i, name in enumerate(imported) if name == 'jax')
  if binary == 'experiments.main':
    assert imported.count('jax') == 1


@pytest.mark.slow
def test_benchmark_quick_runs_both_allocators():
  """benchmarks/huge_pages.py --quick: a narrow ResNet step with each allocator, one row each."""
  result = subprocess.run(
    [sys.executable, os.path.join(REPO, 'benchmarks', 'huge_pages.py'), '--quick'],
    env=_clean_env(),
    cwd=REPO,
    capture_output=True,
    text=True,
    timeout=600,
    check=True,
  )
  rows = [line.split() for line in result.stdout.splitlines() if line.startswith('resnet50')]
  assert [row[1:3] for row in rows] == [['default', 'jaxseg/after'], ['huge', 'jaxseg/after']]
  assert all(float(row[3]) > 0 for row in rows)
