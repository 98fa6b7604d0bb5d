"""Imports flow one way: ops -> nn -> models -> losses/metrics/crf/classic -> data -> train.

Every ``import`` in ``jaxseg/`` is parsed with ``ast`` (including relative and function-level
imports) and checked against the layer table of DESIGN.md.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / 'jaxseg'

# Layer -> the jaxseg layers it may import (itself always allowed).
ALLOWED = {
  'ops': set(),
  'nn': {'ops'},
  'models': {'nn', 'ops'},
  'losses': {'ops'},
  'metrics': {'ops'},
  'crf': {'ops'},
  'classic': {'ops'},
  'inference': {'models', 'nn', 'ops', 'losses', 'metrics', 'crf'},
  'export': {'models', 'nn', 'ops'},
  'viz': set(),
  # data never imports models (or anything that does).
  'data': {'ops', 'losses', 'metrics', 'viz'},
  'train': {
    'ops',
    'nn',
    'models',
    'losses',
    'metrics',
    'crf',
    'classic',
    'inference',
    'data',
    'viz',
  },
}


def _layer(path: pathlib.Path, package_dir: pathlib.Path) -> str:
  return path.relative_to(package_dir).with_suffix('').parts[0]


def imported_modules(path: pathlib.Path, root: pathlib.Path) -> list[tuple[int, str]]:
  """Returns ``(line, absolute module name)`` for every import statement in ``path``."""
  package = list(path.relative_to(root).parts[:-1])  # the package the module is in
  found = []
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      if node.level:
        base = package[: len(package) - node.level + 1]
        module = '.'.join(base + ([node.module] if node.module else []))
      else:
        module = node.module or ''
      found.append((node.lineno, module))
      # `from jaxseg import models` imports the layer `models`.
      if module == 'jaxseg':
        found += [(node.lineno, f'jaxseg.{alias.name}') for alias in node.names]
  return found


def violations(root: pathlib.Path) -> list[str]:
  """Returns one message per import in ``root/jaxseg`` that breaks the layer order."""
  package_dir = root / 'jaxseg'
  problems = []
  for path in sorted(package_dir.rglob('*.py')):
    if path.parent == package_dir and path.name == '__init__.py':
      continue
    layer = _layer(path, package_dir)
    for line, module in imported_modules(path, root):
      where = f'{path.relative_to(root)}:{line} imports {module}'
      if module == 'experiments' or module.startswith('experiments.'):
        problems.append(f'{where} (nothing in jaxseg imports experiments)')
      elif module.startswith('jaxseg.'):
        target = module.split('.')[1]
        if target != layer and target not in ALLOWED.get(layer, set()):
          problems.append(f'{where} (layer {layer!r} may import {sorted(ALLOWED.get(layer, ()))})')
  return problems


def test_every_layer_is_known():
  layers = {
    _layer(p, PACKAGE)
    for p in PACKAGE.rglob('*.py')
    if p.parent != PACKAGE or p.name != '__init__.py'
  }
  unknown = layers - set(ALLOWED)
  assert not unknown, f'add these layers to the import table (and DESIGN.md): {sorted(unknown)}'


def test_imports_flow_one_way():
  problems = violations(ROOT)
  assert not problems, '\n'.join(problems)


@pytest.mark.parametrize(
  'source,layer,expected',
  [
    ('from jaxseg import models\n', 'data', 'jaxseg.models'),
    ('from ..models import resnet\n', 'data', 'jaxseg.models'),
    ('from . import conv\nfrom .. import nn\n', 'ops', 'jaxseg.nn'),
    ('def f():\n  import experiments.main\n', 'ops', 'experiments.main'),
  ],
)
def test_checker_flags_absolute_relative_and_nested_imports(tmp_path, source, layer, expected):
  module = tmp_path / 'jaxseg' / layer / 'bad.py'
  module.parent.mkdir(parents=True)
  module.write_text(source)
  assert expected in [name for _, name in imported_modules(module, tmp_path)]
  assert len(violations(tmp_path)) == 1
