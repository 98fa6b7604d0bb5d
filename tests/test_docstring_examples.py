"""Every docstring example (``>>>``) in jaxseg runs as a doctest, so none can drift (issue 14).

Each module of the package is found by walking it, so a new module is checked without being
listed. Modules whose examples other test files already run one by one (ops, nn, losses, metrics,
the classic methods, the CRF, export), or that take long to compile, run here under the ``slow``
marker (CI runs it); the rest run by default.
"""

import doctest
import importlib
import pathlib
import pkgutil
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxseg

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(jaxseg.__path__, 'jaxseg.'))
# Run elsewhere already (test_ops_docstrings.py, test_classic_*.py, test_crf.py,
# test_export.py) or slow to compile on two cores.
ELSEWHERE_OR_SLOW = (
  'jaxseg.ops.',
  'jaxseg.nn.',
  'jaxseg.losses.',
  'jaxseg.metrics.',
  'jaxseg.classic.',
  'jaxseg.crf.',
  'jaxseg.export',
  'jaxseg.models.deeplab',
  'jaxseg.models.aspp',
  'jaxseg.models.fcn',
  'jaxseg.models.memory',
  'jaxseg.models.saliency',
  'jaxseg.inference.segmentation',
  'jaxseg.train.tasks.saliency',
  'jaxseg.viz.',
)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _globs(module):
  # A module's examples may use the public names of its package (ops.conv's example calls
  # bilinear_kernel, as a user who imported jaxseg.ops would).
  package = importlib.import_module(module.__name__.rpartition('.')[0] or module.__name__)
  names = {k: v for k, v in vars(package).items() if not k.startswith('_')}
  return {**names, **vars(module), 'jax': jax, 'jnp': jnp, 'np': np}


def _params():
  for name in MODULES:
    slow = name.startswith(ELSEWHERE_OR_SLOW)
    yield pytest.param(name, marks=[pytest.mark.slow] if slow else [], id=name)


@pytest.mark.parametrize('module_name', list(_params()))
def test_module_examples_run(module_name):
  module = importlib.import_module(module_name)
  finder = doctest.DocTestFinder(exclude_empty=True)
  tests = [t for t in finder.find(module, module_name, globs=_globs(module)) if t.examples]
  runner = doctest.DocTestRunner(optionflags=FLAGS)
  for test in tests:
    # Only examples defined in this module (not re-exported objects of another module).
    if (
      test.filename
      and pathlib.Path(test.filename).resolve() != pathlib.Path(module.__file__).resolve()
    ):
      continue
    runner.run(test)
  result = runner.summarize(verbose=False)
  assert result.failed == 0, f'{module_name}: {result.failed} example(s) failed (see stdout)'


def test_no_example_is_hidden_behind_skip():
  # An example that cannot run is a plain code block (``Example::``), not a skipped doctest
  # that pretends to be checked. Lines that only print (format_table) are the exception.
  hidden = []
  for path in (ROOT / 'jaxseg').rglob('*.py'):
    for number, line in enumerate(path.read_text().splitlines(), 1):
      if '>>>' in line and '+SKIP' in line:
        hidden.append(f'{path.relative_to(ROOT)}:{number}')
  assert not hidden, hidden


def test_docs_name_only_existing_configs_and_options():
  # docs/training.md's examples name configs and data options; each must exist.
  from jaxseg import data  # pylint: disable=g-import-not-at-top

  configs = {p.stem for p in (ROOT / 'experiments' / 'configs').glob('*.py')}
  text = (ROOT / 'docs' / 'training.md').read_text()
  for name in set(re.findall(r'experiments/configs/(\w+)\.py', text)) - {'base', '__init__'}:
    assert name in configs, f'docs/training.md names a missing config {name}.py'
  for option in set(re.findall(r"'data\.(\w+)'", text)) - {'name'}:
    for dataset in set(re.findall(r"'data\.name': '(\w+)'", text)):
      assert option in data.describe(dataset), (
        f'docs/training.md sets data.{option}, which {dataset} does not have'
      )
  loop_doc = (ROOT / 'jaxseg' / 'train' / 'loop.py').read_text()
  for name in re.findall(r'experiments\.configs import (\w+)', loop_doc):
    assert name in configs, f'train_and_evaluate names a missing config {name}'


def test_interfaces_doc_points_only_to_files_users_have():
  text = (ROOT / 'docs' / 'interfaces.md').read_text()
  for target in re.findall(r'`(\.\./[^`]+)`', text):
    assert (ROOT / 'docs' / target).resolve().is_relative_to(ROOT), (
      f'docs/interfaces.md points outside the repository: {target}'
    )
