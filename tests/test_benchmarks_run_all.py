"""benchmarks/run_all.py runs the benchmarks and writes one JSON file (smoke, --quick)."""

import json
import os
import re
import subprocess
import sys
import time

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


def _load_run_all(monkeypatch, tmp_path, plan, smallest_useful_s=1):
  """run_all imported with ``plan``'s scripts (written to tmp_path) and no device probe."""
  monkeypatch.syspath_prepend(os.path.dirname(RUN_ALL))
  import run_all  # pylint: disable=g-import-not-at-top

  for name, source in plan:
    (tmp_path / f'{name}.py').write_text(source)
  monkeypatch.setattr(run_all, 'HERE', str(tmp_path))
  monkeypatch.setattr(
    run_all, 'PLAN', tuple((name, f'{name}.py', [], [], False, 60) for name, _ in plan)
  )
  monkeypatch.setattr(run_all, '_SMALLEST_USEFUL_S', smallest_useful_s)
  monkeypatch.setattr(run_all, '_device', lambda: {'platform': 'test'})
  return run_all


def test_budget_cuts_the_running_benchmark_and_skips_the_rest(monkeypatch, tmp_path, capsys):
  plan = [('slow', 'import time\nprint("started", flush=True)\ntime.sleep(60)\n'), ('next', '')]
  run_all = _load_run_all(monkeypatch, tmp_path, plan)
  out = tmp_path / 'report.json'
  assert run_all.main([f'--out={out}', '--budget_s=3']) == 1
  report = json.loads(out.read_text())
  slow = report['benchmarks']['slow']
  assert slow['status'].startswith('timeout after') and 'started' in slow['output']
  assert slow['wall_s'] < 30
  assert report['benchmarks']['next'] == {'status': 'over budget'}
  summary = capsys.readouterr().out.splitlines()[-4:-1]  # the summary table before 'total'
  assert re.fullmatch(r'\| slow \| timeout after [0-3] s \| [0-9]+ \| 0 \|', summary[1])
  assert summary[2] == '| next | over budget | - | 0 |'


def test_a_timeout_kills_the_benchmarks_own_processes(monkeypatch, tmp_path):
  marker = tmp_path / 'grandchild_survived'
  grandchild = f'import time; time.sleep(4); open({str(marker)!r}, "w").close()'
  parent = (
    'import subprocess, sys, time\n'
    f'subprocess.Popen([sys.executable, "-c", {grandchild!r}])\n'
    'print("spawned", flush=True)\n'
    'time.sleep(60)\n'
  )
  run_all = _load_run_all(monkeypatch, tmp_path, [('parent', parent)])
  out = tmp_path / 'report.json'
  assert run_all.main([f'--out={out}', '--budget_s=3']) == 1
  # The grandchild was started before the kill, and would have written within 4 s of that.
  assert 'spawned' in json.loads(out.read_text())['benchmarks']['parent']['output']
  time.sleep(5)
  assert not marker.exists()


def test_report_is_written_after_each_benchmark(monkeypatch, tmp_path):
  out = tmp_path / 'report.json'
  # The second benchmark exits 0 only if the report already holds the first one's entry.
  reader = (
    'import json, sys\n'
    f'report = json.load(open({str(out)!r}))\n'
    'sys.exit(0 if report["benchmarks"]["first"]["status"] == 0 else 3)\n'
  )
  run_all = _load_run_all(monkeypatch, tmp_path, [('first', ''), ('second', reader)])
  assert run_all.main([f'--out={out}', '--budget_s=0']) == 0
  report = json.loads(out.read_text())
  assert report['benchmarks']['second']['status'] == 0 and report['budget_s'] is None


def test_negative_budget_is_refused(tmp_path):
  process = subprocess.run(
    [sys.executable, RUN_ALL, f'--out={tmp_path / "x.json"}', '--budget_s=-5'],
    capture_output=True,
    text=True,
    check=False,
  )
  assert process.returncode == 2 and '--budget_s: -5.0 is negative' in process.stderr
