"""benchmarks/run_all.py runs the benchmarks and writes one JSON file (smoke, --quick)."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_ALL = os.path.join(REPO, 'benchmarks', 'run_all.py')


def _run(tmp_path, *args):
  out = tmp_path / 'result.json'
  env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS='cpu')
  # The benchmarks time the machine's own devices, not the 8 CPU devices the suite forces.
  env.pop('XLA_FLAGS', None)
  process = subprocess.run(
    [sys.executable, RUN_ALL, '--quick', f'--out={out}', *args],
    capture_output=True,
    text=True,
    env=env,
    timeout=900,
    check=False,
  )
  assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
  return json.loads(out.read_text())


@pytest.mark.slow  # a subprocess importing JAX and compiling every metric: ~9 s
def test_metrics_smoke_writes_rows(tmp_path):
  report = _run(tmp_path, '--only=metrics')
  assert report['device']['platform'] == 'cpu' and report['quick']
  entry = report['benchmarks']['metrics']
  assert entry['status'] == 0
  names = {row['metric'] for row in entry['rows']}
  assert {'auc_judd', 'auc_shuffled', 'confusion_matrix (eager)'} <= names
  assert all(row['jaxseg_ms'] > 0 for row in entry['rows'])


def test_unknown_benchmark_is_refused(tmp_path):
  process = subprocess.run(
    [sys.executable, RUN_ALL, '--out', str(tmp_path / 'x.json'), '--only=nope'],
    capture_output=True,
    text=True,
    check=False,
  )
  assert process.returncode != 0 and 'unknown' in process.stderr


@pytest.mark.slow
def test_everything_quick(tmp_path):
  report = _run(tmp_path)
  rows = report['benchmarks']['train_step_float32']['rows']
  assert {row['model'] for row in rows} == {'resnet50', 'fcn8s', 'deeplab_v3'}
  assert report['benchmarks']['train_step_bfloat16']['rows'][0]['dtype'] == 'bfloat16'
