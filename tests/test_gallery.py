"""experiments/gallery.py: every method that exists gives a titled tile of one grid."""

import numpy as np
import pytest

from experiments import gallery


def _image():
  rng = np.random.default_rng(0)
  image = np.full((24, 24, 3), 40, np.uint8)
  image[6:18, 6:18] = (200, 60, 50)
  return np.clip(image + rng.integers(0, 20, image.shape), 0, 255).astype(np.uint8)


def test_gallery_of_a_few_methods_is_one_labelled_grid():
  logs = []
  grid, titles = gallery.build_gallery(
    _image(), columns=2, only=('Otsu', 'GrabCut'), log=logs.append
  )
  assert titles == ['input', 'Otsu', 'GrabCut (centre box)'], logs
  assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[-1] == 3
  # Two rows of two columns of 24-pixel tiles under their title strips.
  assert grid.shape[1] == 3 * 4 + 2 * 24 and grid.shape[0] > 2 * 24


def test_missing_and_failing_methods_are_reported_not_fatal(monkeypatch):
  def broken(classic, crf):
    del classic, crf
    return [
      ('absent', 'no_such_function', None),
      ('broken', 'threshold_otsu', lambda context: 1 / 0),
    ]

  monkeypatch.setattr(gallery, 'methods', broken)
  logs = []
  _, titles = gallery.build_gallery(_image(), log=logs.append)
  assert titles == ['input']
  assert any('[missing] absent' in line for line in logs)
  assert any('[failed] broken: ZeroDivisionError' in line for line in logs)


@pytest.mark.slow
def test_gallery_runs_every_method(tmp_path):
  logs = []
  _, titles = gallery.build_gallery(_image(), log=logs.append)
  assert not [line for line in logs if line.startswith('[failed]')], logs
  assert len(titles) >= 2
