r"""Classic segmentation against its anchors (scikit-image, scikit-learn, OpenCV, PyMaxflow, gco).

Usage::

  python benchmarks/classic.py            # every family, full sizes
  python benchmarks/classic.py --quick    # small sizes, a smoke run
  python benchmarks/classic.py --families=thresholding,graph_cut

Each family lives in ``benchmarks/classic_<family>.py`` and returns rows measured in one run,
jaxseg and its anchor side by side (only ratios are stable on shared machines). jaxseg times
exclude compilation (reported apart where a family measures it) and wait with
``block_until_ready``. ``ratio`` is ``anchor_ms / jaxseg_ms``: above 1, jaxseg is faster.
"""

import argparse
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FAMILIES = (
  'thresholding',
  'clustering',
  'region',
  'level_sets',
  'graph_cut',
  'mrf',
  'normalized_cut',
  'grabcut',
)


def _format(rows):
  header = ('method', 'size', 'batch', 'jaxseg ms', 'anchor', 'anchor ms', 'ratio', 'note')
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for row in rows:
    ratio = row['anchor_ms'] / row['jaxseg_ms'] if row.get('anchor_ms') else float('nan')
    anchor_ms = f'{row["anchor_ms"]:.1f}' if row.get('anchor_ms') else '-'
    lines.append(
      f'| {row["method"]} | {row["size"]} | {row["batch"]} | {row["jaxseg_ms"]:.1f} | '
      f'{row.get("anchor", "-")} | {anchor_ms} | {ratio:.2f} | {row.get("note", "")} |'
    )
  return '\n'.join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--quick', action='store_true', help='small sizes (a smoke run)')
  parser.add_argument(
    '--families',
    default=','.join(FAMILIES),
    help='comma-separated subset of ' + ', '.join(FAMILIES),
  )
  args = parser.parse_args(argv)
  rows = []
  for family in args.families.split(','):
    if family not in FAMILIES:
      parser.error(f'--families: unknown family {family!r}; expected some of {FAMILIES}')
    try:
      rows.extend(importlib.import_module(f'classic_{family}').rows(args.quick))
    except ModuleNotFoundError as error:
      # An anchor that is not installed (scikit-image, scikit-learn, OpenCV, PyMaxflow, gco;
      # families import theirs when they run): its rows stand beside the anchor's, so the
      # family is skipped and named. A module of this project missing is a bug, not a skip.
      if (error.name or '').split('.')[0] in ('jaxseg', 'experiments'):
        raise
      print(f'[skip] {family}: {error}')
  print(_format(rows))
  return rows


if __name__ == '__main__':
  main()
