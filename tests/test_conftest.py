"""tests/conftest.py's worker count for `-n auto` (pytest-xdist)."""

import os

import pytest

from tests import conftest


@pytest.mark.parametrize(
  'text, cpus', [('200000 100000\n', 2), ('150000 100000\n', 2), ('100000 100000', 1)]
)
def test_cgroup_quota_is_rounded_up_to_whole_cpus(tmp_path, text, cpus):
  path = tmp_path / 'cpu.max'
  path.write_text(text)
  assert conftest._cgroup_cpu_quota(str(path)) == cpus  # pylint: disable=protected-access


@pytest.mark.parametrize('text', ['max 100000\n', 'garbage\n', None])
def test_no_quota_leaves_the_affinity(tmp_path, text):
  path = tmp_path / 'cpu.max'
  if text is not None:
    path.write_text(text)
  assert conftest._cgroup_cpu_quota(str(path)) >= 1 << 30  # pylint: disable=protected-access


@pytest.mark.parametrize(
  'affinity, quota, workers', [(64, 2, 2), (2, 1 << 30, 2), (64, 1 << 30, 4), (1, 8, 1)]
)
def test_auto_workers_are_the_usable_cores_capped(monkeypatch, affinity, quota, workers):
  monkeypatch.delenv('PYTEST_XDIST_AUTO_NUM_WORKERS', raising=False)
  monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: set(range(affinity)), raising=False)
  monkeypatch.setattr(conftest, '_cgroup_cpu_quota', lambda: quota)
  assert conftest.pytest_xdist_auto_num_workers(None) == workers


def test_the_environment_variable_is_left_to_xdist(monkeypatch):
  monkeypatch.setenv('PYTEST_XDIST_AUTO_NUM_WORKERS', '3')
  assert conftest.pytest_xdist_auto_num_workers(None) is None
