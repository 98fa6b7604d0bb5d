"""jaxseg.viz.run_curves: the curves of several runs, drawn by this process and helpers."""

import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from jaxseg.viz import curves, run_curves


def _run(tmp_path, name, losses):
  workdir = tmp_path / name
  workdir.mkdir()
  with open(workdir / 'metrics.jsonl', 'w') as f:
    for step, loss in enumerate(losses, start=1):
      f.write(json.dumps({'step': step, 'split': 'train', 'loss': loss}) + '\n')
  return str(workdir)


def _pixels(path):
  return np.asarray(Image.open(path))


def test_every_run_is_drawn_as_one_process_draws_it(tmp_path):
  # Four runs over two processes: the helper's pictures equal this process's, pixel for pixel.
  runs = [_run(tmp_path, f'run{k}', [1.0 / (k + s) for s in range(1, 6)]) for k in range(4)]
  assert run_curves.draw_runs(runs, processes=2) == []
  for workdir in runs:
    alone = os.path.join(workdir, 'alone.png')
    curves.plot_curves(
      curves.read_metrics(os.path.join(workdir, 'metrics.jsonl')),
      alone,
      title=os.path.abspath(workdir),
    )
    np.testing.assert_array_equal(_pixels(os.path.join(workdir, 'curves.png')), _pixels(alone))


def test_helpers_are_started_only_for_two_runs_or_more(tmp_path, monkeypatch):
  started = []
  original = run_curves._start_helper  # pylint: disable=protected-access

  def start(share):
    started.append(list(share))
    return original(share)

  monkeypatch.setattr(run_curves, '_start_helper', start)
  runs = [_run(tmp_path, f'run{k}', [1.0, 0.5]) for k in range(5)]
  run_curves.draw_runs(runs[:3], processes=8)
  assert started == []  # three runs: one helper would hold a single figure
  run_curves.draw_runs(runs, processes=8)
  assert started == [runs[1::2]]  # five runs: two shares, this process draws runs 0, 2, 4
  started.clear()
  run_curves.draw_runs(runs, processes=1)
  assert started == []


def test_warnings_come_back_from_the_helpers_in_order(tmp_path):
  good = [_run(tmp_path, f'good{k}', [1.0, 0.5]) for k in range(2)]
  missing = [str(tmp_path / 'missing0'), str(tmp_path / 'missing1')]
  warnings = run_curves.draw_runs([good[0], missing[0], good[1], missing[1]], processes=2)
  assert len(warnings) == 2  # missing1 was drawn (tried) by the helper, missing0 here
  for warning, workdir in zip(warnings, missing):
    assert warning.startswith(f'warning: could not draw {workdir}/curves.png')
  assert all(os.path.exists(os.path.join(w, 'curves.png')) for w in good)


@pytest.mark.parametrize('how', ['exits_non_zero', 'cannot_start'])
def test_a_failed_helper_has_its_share_drawn_here(tmp_path, monkeypatch, how):
  def broken(share):
    return subprocess.Popen(['false'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

  if how == 'cannot_start':
    monkeypatch.setattr(run_curves.sys, 'executable', str(tmp_path / 'no_such_python'))
  else:
    monkeypatch.setattr(run_curves, '_start_helper', broken)
  runs = [_run(tmp_path, f'run{k}', [1.0, 0.5]) for k in range(4)]
  assert run_curves.draw_runs(runs, processes=2) == []
  assert all(os.path.exists(os.path.join(w, 'curves.png')) for w in runs)


def test_processes_must_be_positive(tmp_path):
  with pytest.raises(ValueError, match='processes: expected >= 1, got 0'):
    run_curves.draw_runs([str(tmp_path)], processes=0)
