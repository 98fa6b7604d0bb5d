r"""Every benchmark in one command, the tables printed and the rows saved as one JSON file.

Usage::

  python benchmarks/run_all.py --out=benchmarks/results/<device>.json   # on a GPU: < 8 min
  python benchmarks/run_all.py --quick --out=/tmp/smoke.json             # CPU smoke run

Runs, each in its own process (a crash or a missing optional dependency costs one entry, not
the run) and each under a time limit:

* ``train_step.py --torch`` in float32 (jaxseg and PyTorch's same step; four models), then
  ``train_step.py`` in bfloat16;
* ``sweep.py`` (a vectorized population of 8 LeNet-5 trials against one process per trial, and
  the population size at which it stops paying);
* ``metrics.py`` (saliency metrics and the confusion matrix against NumPy);
* ``crf.py`` and ``classic.py``, when present.

``--quick`` passes each its small-size options (``--quick`` where the script has it). The JSON
holds the device, versions, the host load and, per benchmark, its command, exit status, wall time,
the rows it wrote with ``--json`` where it supports that, and its printed output.

The whole run keeps to ``--budget_s`` (8 minutes by default, the issue's target on one GPU): each
benchmark runs under the smaller of its own limit and what is left, and one that would start with
less than ``_SMALLEST_USEFUL_S`` left is skipped and named. The JSON file is rewritten after every
benchmark, so a run killed from outside (a lent machine's command limit) keeps what finished.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name, script, arguments, arguments with --quick, supports --json, time limit (s). In order of
# what a short lease should bring back first: the train step beside PyTorch, the small ones, and
# the sweep (eight start-ups of a process) last.
PLAN = (
  (
    'train_step_float32',
    'train_step.py',
    ['--torch', '--warmup=2', '--steps=5', '--passes=1'],
    ['--quick'],
    True,
    360,
  ),
  (
    'train_step_bfloat16',
    'train_step.py',
    ['--dtype=bfloat16', '--warmup=2', '--steps=5', '--passes=1'],
    ['--quick', '--dtype=bfloat16'],
    True,
    200,
  ),
  ('metrics', 'metrics.py', [], ['--quick'], True, 200),
  ('crf', 'crf.py', [], ['--cases=small', '--repeats=1', '--batch=2'], False, 200),
  ('classic', 'classic.py', [], ['--quick'], False, 200),
  # 8 trials one process each (~20 s of start-up and compilation each on a GPU), then the
  # population at K = 8 and the K scan.
  ('sweep', 'sweep.py', ['--steps=300', '--ks=1,16,64'], ['--quick'], True, 420),
)

# A benchmark that would start with less time than this left is skipped rather than started to be
# cut off: the shortest (metrics, crf) take about this long with their start-up.
_SMALLEST_USEFUL_S = 30


# Asked of a child process: JAX initialised here would hold its GPU memory (it preallocates 75%
# by default) for the whole run, and each benchmark's own process would find it taken.
_DEVICE_PROBE = (
  'import json, jax; d = jax.devices()[0]; print(json.dumps({"platform": d.platform, '
  '"device_kind": d.device_kind, "device_count": jax.device_count(), "jax": jax.__version__}))'
)


def _device() -> dict:
  probe = subprocess.run(
    [sys.executable, '-c', _DEVICE_PROBE], capture_output=True, text=True, check=True, timeout=300
  )
  return {
    **json.loads(probe.stdout.strip().splitlines()[-1]),
    'python': platform.python_version(),
    'cpu_count': os.cpu_count(),
    'load_at_start': os.getloadavg()[0],
    'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
  }


def _run_killing_its_group(command, limit_s) -> tuple[str, int | str]:
  """Runs ``command``; returns its output and exit status, or ``'timeout after N s'``.

  The child leads a process group of its own and the whole group is killed at the limit: the
  benchmarks start processes of their own (train_step.py one per variant), which a kill of the
  child alone would leave running, holding the GPU while the next benchmark starts. A group, not
  a session: whatever ends this run's session (a terminal closed, a lent machine's command
  limit) still reaches them.
  """
  process = subprocess.Popen(
    command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0
  )
  try:
    output, _ = process.communicate(timeout=limit_s)
    return output, process.returncode
  except subprocess.TimeoutExpired:
    os.killpg(process.pid, signal.SIGKILL)
    try:
      output, _ = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:  # a process that left the group still holds the pipe
      output = '(output lost: a process outside the killed group kept it open)'
    return output, f'timeout after {limit_s} s'


def run_one(name, script, args, with_json, limit_s, scratch) -> dict:
  """Runs one benchmark script; returns its entry (rows, output, status, wall time)."""
  path = os.path.join(HERE, script)
  if not os.path.exists(path):
    print(f'== {name}: skipped ({script} does not exist yet)', flush=True)
    return {'status': 'missing'}
  json_path = os.path.join(scratch, f'{name}.json')
  command = [sys.executable, path, *args] + ([f'--json={json_path}'] if with_json else [])
  print(f'== {name}: {" ".join(command[1:])}', flush=True)
  start = time.perf_counter()
  output, status = _run_killing_its_group(command, limit_s)
  wall_s = time.perf_counter() - start
  print(output.rstrip(), flush=True)
  print(f'== {name}: status {status}, {wall_s:.0f} s', flush=True)
  entry = {'command': command[1:], 'status': status, 'wall_s': wall_s, 'output': output}
  if with_json and os.path.exists(json_path):
    with open(json_path) as f:
      entry['rows'] = json.load(f)
  return entry


def _write_report(report: dict, path: str) -> None:
  """Writes the report whole or not at all (a kill mid-write leaves the previous file)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  partial = f'{path}.partial'
  with open(partial, 'w') as f:
    json.dump(report, f, indent=1)
  os.replace(partial, path)


def _time_left(budget_s, start) -> float:
  return float('inf') if budget_s is None else budget_s - (time.perf_counter() - start)


def _summary(entries: dict) -> str:
  """One line per benchmark, printed last: a lent machine's reply carries only the output's
  end, so the statuses must be there whatever the tables above printed."""
  lines = ['| benchmark | status | wall s | rows |', '|---|---|---|---|']
  for name, entry in entries.items():
    wall = f'{entry["wall_s"]:.0f}' if 'wall_s' in entry else '-'
    lines.append(f'| {name} | {entry["status"]} | {wall} | {len(entry.get("rows", []))} |')
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
    '--out', required=True, help='JSON file to write, e.g. benchmarks/results/h200.json'
  )
  parser.add_argument('--quick', action='store_true', help='small sizes: a smoke run')
  parser.add_argument(
    '--only', default='', help='comma-separated subset of: ' + ', '.join(p[0] for p in PLAN)
  )
  parser.add_argument(
    '--budget_s',
    type=float,
    default=None,
    help='seconds for the whole run (default: 480, none with --quick); 0: no limit',
  )
  args = parser.parse_args(argv)
  only = set(filter(None, args.only.split(',')))
  unknown = only - {p[0] for p in PLAN}
  if unknown:
    parser.error(f'--only: unknown {sorted(unknown)}; known: {[p[0] for p in PLAN]}')
  if args.budget_s is not None and args.budget_s < 0:
    parser.error(f'--budget_s: {args.budget_s} is negative; expected seconds >= 0 (0: no limit)')
  budget_s = args.budget_s if args.budget_s is not None else (None if args.quick else 480.0)
  budget_s = budget_s or None
  report = {'device': _device(), 'quick': args.quick, 'budget_s': budget_s, 'benchmarks': {}}
  print(f'device: {report["device"]}', flush=True)
  start = time.perf_counter()
  with tempfile.TemporaryDirectory() as scratch:
    for name, script, full, quick, with_json, limit_s in PLAN:
      if only and name not in only:
        continue
      left_s = _time_left(budget_s, start)
      if left_s < _SMALLEST_USEFUL_S:
        print(
          f'== {name}: skipped ({left_s:.0f} s of the {budget_s:.0f} s budget left)', flush=True
        )
        report['benchmarks'][name] = {'status': 'over budget'}
        continue
      extra = quick if args.quick else full
      limit_s = int(min(limit_s, left_s))
      report['benchmarks'][name] = run_one(name, script, extra, with_json, limit_s, scratch)
      report['total_s'] = time.perf_counter() - start
      _write_report(report, args.out)
  report['total_s'] = time.perf_counter() - start
  report['load_at_end'] = os.getloadavg()[0]
  _write_report(report, args.out)
  failed = [n for n, e in report['benchmarks'].items() if e['status'] not in (0, 'missing')]
  print(_summary(report['benchmarks']))
  print(
    f'total {report["total_s"]:.0f} s; wrote {args.out}'
    + (f'; FAILED or skipped: {", ".join(failed)}' if failed else '')
  )
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
