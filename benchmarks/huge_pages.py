"""The train step with and without malloc on transparent huge pages, each framework alone.

``experiments/huge_pages.py`` restarts the training binaries with glibc's
``glibc.malloc.hugetlb=1``. This measures what that does to the train step of
``train_step.py``'s models, for jaxseg and for PyTorch (eager ``channels_last`` and
``torch.compile``), each variant in a fresh process of its own (so no framework's allocations
shape another's), with and without the tunable, in ``--passes`` alternating passes. Prints
the median step, the page faults and the system time per step, and jaxseg's images/s over the
best PyTorch variant's under the same allocator::

  python benchmarks/huge_pages.py [--models=resnet50,vgg16] [--steps=6] [--passes=2]
  python benchmarks/huge_pages.py --quick   # smoke run: narrow jaxseg models, one step
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from experiments import huge_pages as binaries_huge_pages

SIDES = ('jaxseg', 'torch', 'torch/compile')


def _child(model: str, side: str, steps: int, quick: bool) -> None:
  """Times `steps` steps of one variant after 2 warm-up steps; prints one JSON line."""
  sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
  import train_step  # pylint: disable=g-import-not-at-top

  if quick:
    train_step.CASES.clear()
    train_step.CASES.update(train_step.QUICK_CASES)

  if side == 'jaxseg':
    run = train_step.make_jax_step(model, dtype='float32')[0]
  else:
    run = train_step.make_torch_steps(model, compile_=side == 'torch/compile')[0][side]
  run()
  run()
  start, times = resource.getrusage(resource.RUSAGE_SELF), []
  for _ in range(steps):
    begin = time.perf_counter()
    run()
    times.append(time.perf_counter() - begin)
  end = resource.getrusage(resource.RUSAGE_SELF)
  print(
    json.dumps(
      {
        'step_ms': 1e3 * statistics.median(times),
        'faults': (end.ru_minflt - start.ru_minflt) / steps,
        'system_ms': 1e3 * (end.ru_stime - start.ru_stime) / steps,
      }
    )
  )


def _measure(model: str, side: str, steps: int, huge_pages: bool, quick: bool) -> dict:
  env = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'}
  if huge_pages:
    env['GLIBC_TUNABLES'] = f'{binaries_huge_pages.TUNABLE}=1'
  out = subprocess.run(
    [
      sys.executable,
      os.path.abspath(__file__),
      f'--child={side}',
      f'--models={model}',
      f'--steps={steps}',
      *(['--quick'] if quick else []),
    ],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  ).stdout
  return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet50,vgg16,fcn8s,deeplab_v3')
  parser.add_argument('--steps', type=int, default=6)
  parser.add_argument('--passes', type=int, default=2)
  parser.add_argument('--quick', action='store_true', help='narrow jaxseg models only, one step')
  parser.add_argument('--child', default='', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.child:
    _child(args.models, args.child, args.steps, args.quick)
    return
  sides = SIDES
  if args.quick:
    args.models, args.steps, args.passes, sides = 'resnet50', 1, 1, ('jaxseg',)
  print(
    f'median of {args.steps} steps a process, {args.passes} alternating passes, '
    f'load {os.getloadavg()[0]:.1f}'
  )
  print(
    f'{"model":<11} {"malloc":<10} {"variant":<14} {"step ms":>8} {"faults":>9} '
    f'{"system ms":>9} {"/ best torch":>12}'
  )
  for model in args.models.split(','):
    rows = {}
    for _ in range(args.passes):
      for huge_pages in (False, True):
        for side in sides:
          rows.setdefault((huge_pages, side), []).append(
            _measure(model, side, args.steps, huge_pages, args.quick)
          )
    for huge_pages in (False, True):
      merged = {
        side: {
          key: statistics.median(r[key] for r in rows[(huge_pages, side)])
          for key in ('step_ms', 'faults', 'system_ms')
        }
        for side in sides
      }
      best_torch = min((merged[s]['step_ms'] for s in sides if s != 'jaxseg'), default=None)
      for side in sides:
        m = merged[side]
        ratio = best_torch / m['step_ms'] if best_torch else float('nan')
        print(
          f'{model:<11} {"huge" if huge_pages else "default":<10} {side:<14} '
          f'{m["step_ms"]:8.0f} {m["faults"]:9.0f} {m["system_ms"]:9.0f} {ratio:12.2f}',
          flush=True,
        )
  print(f'load {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
  main()
