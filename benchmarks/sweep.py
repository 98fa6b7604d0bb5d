r"""LeNet-5 learning-rate sweep on digits: one vmapped population against one process per trial.

Usage::

  python benchmarks/sweep.py                        # K=8, the config's 600 steps, K scan 1..32
  python benchmarks/sweep.py --steps=150 --ks=1,2,4,8,16,32
  python benchmarks/sweep.py --quick --json=/tmp/sweep.json   # smoke run (run_all.py --quick)

What is timed: the whole command a user runs, ``python -m experiments.sweep --sweep=<file>
--workdir=<fresh> --mode=processes`` (one ``experiments.main`` process per trial, one at a time:
the default on a CPU) against ``--mode=vectorized`` (every trial in one vmapped program), wall
time from start to ``summary.csv``, each with a fresh, empty compilation cache
(``JAXSEG_COMPILATION_CACHE``), so both compile everything once. The trials are
``experiments/configs/lenet5_digits.py`` at ``K`` learning rates spaced evenly in log space from
3e-4 to 1e-2 (the config's 2e-3 among the eight), seed 0 (so both modes see the same data
order and should reach the same accuracies), ``--steps`` train steps each. The digits dataset is
built before timing.

Then the K scan: the vectorized sweep alone for each K of ``--ks``; its wall time against K times
the mean wall time of one trial of the process run above gives the speed-up at each K, and the
K at which the population stops paying (speed-up below 1), if any in the range.

``CPU s`` is the processor time of the command and every process it started (user + system,
from ``getrusage(RUSAGE_CHILDREN)``), and ``CPU ratio`` the processes' over it: what the
speed-up would be on a machine kept busy, and less sensitive than wall time to other work on a
shared one (a trial process also spends CPU on its own input pipeline and compilation, which
overlap its training on a second core when one is free).

``member-steps/s`` is the population's training rate at its last log line (compilation and
evaluation excluded): K times its steps per second. The table, then one JSON list of rows with
``--json``.
"""

import argparse
import csv
import json
import math
import os
import re
import resource
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, 'experiments', 'configs', 'lenet5_digits.py')


def learning_rates(k: int) -> list[float]:
  """``k`` rates evenly spaced in log space over [3e-4, 1e-2] (one rate: the config's 2e-3)."""
  if k == 1:
    return [2e-3]
  lo, hi = math.log(3e-4), math.log(1e-2)
  return [float(f'{math.exp(lo + (hi - lo) * i / (k - 1)):.3g}') for i in range(k)]


def write_sweep(directory: str, k: int, steps: int) -> str:
  """Writes a sweep file of ``k`` learning rates at ``steps`` steps; returns its path."""
  path = os.path.join(directory, f'sweep_k{k}.py')
  warmup = min(30, steps // 4)
  with open(path, 'w') as f:
    f.write(
      'from experiments import sweep\n\n'
      'def get_sweep():\n'
      f'  return sweep.Sweep(base_config={CONFIG!r}, trials=sweep.product(\n'
      f"      {{'optimizer.learning_rate': {learning_rates(k)!r}}},\n"
      f"      {{'total_steps': [{steps}], 'schedule.warmup_steps': [{warmup}]}}))\n"
    )
  return path


def run_sweep(sweep_file: str, mode: str, scratch: str, name: str) -> dict:
  """Runs ``experiments.sweep`` in ``mode`` with a fresh workdir and cache; returns its timing."""
  workdir = os.path.join(scratch, name)
  # The repository first, the caller's path kept (packages installed with --target live there,
  # as on a lent GPU machine: benchmarks/gpu/run.sh).
  python_path = os.pathsep.join(filter(None, [REPO, os.environ.get('PYTHONPATH')]))
  env = dict(
    os.environ,
    PYTHONPATH=python_path,
    JAXSEG_COMPILATION_CACHE=os.path.join(scratch, f'{name}_cache'),
  )
  command = [
    sys.executable,
    '-m',
    'experiments.sweep',
    f'--sweep={sweep_file}',
    f'--workdir={workdir}',
    f'--mode={mode}',
  ]
  start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
  process = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the sweep and its trial processes
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  if process.returncode:
    raise RuntimeError(f'{" ".join(command)} failed:\n{(process.stdout + process.stderr)[-3000:]}')
  with open(os.path.join(workdir, 'summary.csv')) as f:
    rows = list(csv.DictReader(f))
  # Vectorized: the training rate of the last log line, compilation excluded.
  rates = re.findall(r'\(([0-9.e+]+) member-steps/s\)', process.stdout)
  return {
    'wall_s': wall,
    'cpu_s': cpu,
    'accuracies': [float(r['accuracy']) for r in rows],
    'member_steps_per_s': float(rates[-1]) if rates else None,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--members', type=int, default=8, help='K of the head-to-head run')
  parser.add_argument('--steps', type=int, default=600, help='train steps per trial')
  parser.add_argument('--ks', default='1,4,16,32', help='population sizes of the K scan')
  parser.add_argument('--quick', action='store_true', help='K=2, 20 steps, no scan: a smoke run')
  parser.add_argument('--json', default='', help='write the rows here')
  args = parser.parse_args(argv)
  if args.quick:
    args.members, args.steps, args.ks = 2, 20, ''
  if args.members < 1 or args.steps < 4:
    parser.error('--members must be >= 1 and --steps >= 4')
  ks = [int(k) for k in args.ks.split(',') if k]

  sys.path.insert(0, REPO)
  import ml_collections  # pylint: disable=g-import-not-at-top

  from jaxseg import data  # pylint: disable=g-import-not-at-top

  data.dataset_info(ml_collections.ConfigDict({'name': 'digits'}))  # built before timing
  rows = []
  with tempfile.TemporaryDirectory() as scratch:
    sweep_file = write_sweep(scratch, args.members, args.steps)
    processes = run_sweep(sweep_file, 'processes', scratch, 'processes')
    vectorized = run_sweep(sweep_file, 'vectorized', scratch, 'vectorized')
    per_trial = processes['wall_s'] / args.members
    per_trial_cpu = processes['cpu_s'] / args.members
    for mode, result in (('processes', processes), ('vectorized', vectorized)):
      accuracies = result['accuracies']
      rows.append(
        {
          'mode': mode,
          'members': args.members,
          'steps': args.steps,
          'wall_s': result['wall_s'],
          'cpu_s': result['cpu_s'],
          'speedup': processes['wall_s'] / result['wall_s'],
          'cpu_ratio': processes['cpu_s'] / result['cpu_s'],
          'accuracy_mean': sum(accuracies) / len(accuracies),
          'accuracies': accuracies,
          'member_steps_per_s': result['member_steps_per_s'],
        }
      )
    for k in ks:
      result = (
        vectorized
        if k == args.members
        else run_sweep(write_sweep(scratch, k, args.steps), 'vectorized', scratch, f'scan{k}')
      )
      rows.append(
        {
          'mode': 'vectorized (scan)',
          'members': k,
          'steps': args.steps,
          'wall_s': result['wall_s'],
          'cpu_s': result['cpu_s'],
          'speedup': k * per_trial / result['wall_s'],
          'cpu_ratio': k * per_trial_cpu / result['cpu_s'],
          'accuracy_mean': sum(result['accuracies']) / k,
          'accuracies': result['accuracies'],
          'member_steps_per_s': result['member_steps_per_s'],
        }
      )

  load = os.getloadavg()[0]
  print(
    f'LeNet-5 digits learning-rate sweep, {args.steps} steps per trial, '
    f'{os.cpu_count()} CPUs, load {load:.1f}; speed-up = processes wall / vectorized wall '
    '(scan rows: K x the mean process-mode trial)'
  )
  print(
    '| mode | K | wall s | s per trial | speed-up | CPU s | CPU ratio | member-steps/s '
    '| mean accuracy | accuracies |'
  )
  print('|---|---|---|---|---|---|---|---|---|---|')
  for row in rows:
    rate = '-' if row['member_steps_per_s'] is None else f'{row["member_steps_per_s"]:.1f}'
    print(
      f'| {row["mode"]} | {row["members"]} | {row["wall_s"]:.1f} | '
      f'{row["wall_s"] / row["members"]:.1f} | {row["speedup"]:.2f}x | {row["cpu_s"]:.1f} | '
      f'{row["cpu_ratio"]:.2f}x | {rate} | '
      f'{row["accuracy_mean"]:.4f} | {" ".join(f"{a:.3f}" for a in row["accuracies"])} |'
    )
  gap = max(abs(a - b) for a, b in zip(rows[0]['accuracies'], rows[1]['accuracies']))
  print(f'largest accuracy difference between the modes, trial by trial: {gap:.4f}')
  scan = sorted([r for r in rows if r['mode'] == 'vectorized (scan)'], key=lambda r: r['members'])
  if scan:
    paying = [r['members'] for r in scan if r['speedup'] > 1]
    best = max(scan, key=lambda r: r['speedup'])
    print(
      'K scan: the population pays (speed-up > 1) from K = '
      + (str(min(paying)) if paying else f'none of {ks}')
      + f'; the speed-up peaks at K = {best["members"]} ({best["speedup"]:.2f}x): larger '
      'populations stop paying more (beyond it each member costs what it costs alone)'
    )
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=1)
  return 0


if __name__ == '__main__':
  sys.exit(main())
