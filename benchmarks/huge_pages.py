"""The train step with and without malloc on transparent huge pages, each framework alone.

``experiments/huge_pages.py`` restarts the training binaries with glibc's
``glibc.malloc.hugetlb=1``. This measures what that does to the train step of
``train_step.py``'s models, for jaxseg and for PyTorch (eager NCHW and
``torch.compile``), each variant in a fresh process of its own (so no framework's allocations
shape another's), with and without the tunable, in ``--passes`` alternating passes. Prints
the median step, the page faults and the system time per step, and jaxseg's images/s over the
best PyTorch variant's under the same allocator::

  python benchmarks/huge_pages.py [--models=resnet50,vgg16] [--steps=6] [--passes=2]
  python benchmarks/huge_pages.py --quick   # smoke run: narrow jaxseg models, one step
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train_step  # noqa: E402

SIDES = ('jaxseg/after', 'torch', 'torch/compile')


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default='resnet50,vgg16,fcn8s,deeplab_v3')
  parser.add_argument('--steps', type=int, default=6)
  parser.add_argument('--passes', type=int, default=2)
  parser.add_argument('--quick', action='store_true', help='narrow jaxseg models only, one step')
  args = parser.parse_args(argv)
  sides = SIDES
  if args.quick:
    args.models, args.steps, args.passes, sides = 'resnet50', 1, 1, ('jaxseg/after',)
  print(
    f'median of {args.steps} steps a process, {args.passes} alternating passes, '
    f'load {os.getloadavg()[0]:.1f}'
  )
  print(
    f'{"model":<11} {"malloc":<10} {"variant":<14} {"step ms":>8} {"faults":>9} '
    f'{"system ms":>9} {"/ best torch":>12}'
  )
  for model in args.models.split(','):
    runs = {}
    for _ in range(args.passes):
      for malloc in ('default', 'huge'):
        for side in sides:
          runs.setdefault((malloc, side), []).append(
            train_step.time_in_own_process(
              model,
              side,
              dtype='float32',
              warmup=2,
              steps_=args.steps,
              malloc=malloc,
              quick=args.quick,
            )
          )
    for malloc in ('default', 'huge'):
      merged = {
        side: {
          key: statistics.median(r[key] for r in runs[(malloc, side)])
          for key in ('step_s', 'faults', 'system_ms')
        }
        for side in sides
      }
      best_torch = min((merged[s]['step_s'] for s in sides if s.startswith('torch')), default=None)
      for side in sides:
        m = merged[side]
        ratio = best_torch / m['step_s'] if best_torch else float('nan')
        print(
          f'{model:<11} {malloc:<10} {side:<14} {1e3 * m["step_s"]:8.0f} {m["faults"]:9.0f} '
          f'{m["system_ms"]:9.0f} {ratio:12.2f}',
          flush=True,
        )
  print(f'load {os.getloadavg()[0]:.1f}')


if __name__ == '__main__':
  main()
