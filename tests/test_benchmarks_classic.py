"""benchmarks/classic.py skips a family whose anchor is not installed, and only that."""

import os
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks')


def _classic_with_families(monkeypatch, tmp_path, families):
  """benchmarks/classic.py imported with stand-in family modules ``{name: rows() body}``."""
  monkeypatch.syspath_prepend(BENCHMARKS)
  monkeypatch.syspath_prepend(str(tmp_path))
  for name, body in families.items():
    (tmp_path / f'classic_{name}.py').write_text(f'def rows(quick):\n  {body}\n')
    monkeypatch.delitem(sys.modules, f'classic_{name}', raising=False)
  import classic  # pylint: disable=g-import-not-at-top

  monkeypatch.setattr(classic, 'FAMILIES', tuple(families))
  return classic


def test_a_missing_anchor_skips_its_family_and_the_others_run(monkeypatch, tmp_path, capsys):
  row = {'method': 'm', 'size': 's', 'batch': 1, 'jaxseg_ms': 1.0, 'anchor_ms': 2.0}
  classic = _classic_with_families(
    monkeypatch,
    tmp_path,
    {'needs_anchor': 'import anchor_that_is_not_installed', 'plain': f'return [{row!r}]'},
  )
  assert classic.main(['--families=needs_anchor,plain']) == [row]
  assert "[skip] needs_anchor: No module named 'anchor_that_is_not_installed'" in (
    capsys.readouterr().out
  )


def test_a_missing_module_of_this_project_is_raised(monkeypatch, tmp_path):
  classic = _classic_with_families(monkeypatch, tmp_path, {'broken': 'import jaxseg.no_such'})
  with pytest.raises(ModuleNotFoundError, match='jaxseg.no_such'):
    classic.main(['--families=broken'])
