"""Reproducibility of the input pipeline, and datasets built by several processes at once."""

import hashlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxseg import data

# The data options of experiments/configs/lenet5_digits.py.
_DIGITS = {
  'name': 'digits',
  'image_size': 32,
  'crop_padding': 2,
  'normalization': 'none',
  'read_threads': 2,
}
_BATCH = 64  # 1500 // 64 = 23 batches per epoch


@pytest.fixture(scope='module')
def digits(tmp_path_factory):
  cfg = dict(_DIGITS, data_dir=str(tmp_path_factory.mktemp('jaxseg_data')))
  data.dataset_info(cfg)
  return cfg


def _digests(it, n):
  out = []
  for _ in range(n):
    batch = next(it)
    out.append(
      hashlib.sha1(
        b''.join(np.ascontiguousarray(batch[k]).tobytes() for k in sorted(batch))
      ).hexdigest()
    )
  return out


def _iterator(cfg, seed=0):
  return data.make_iterator(cfg, split='train', global_batch_size=_BATCH, seed=seed, train=True)


def test_same_seed_gives_bit_identical_batches_across_epochs(digits):
  first = _digests(_iterator(digits), 30)  # 30 batches cross the epoch boundary at 23
  assert first == _digests(_iterator(digits), 30)
  assert len(set(first)) == 30
  other = _digests(_iterator(digits, seed=1), 30)
  assert not set(first) & set(other)


def test_worker_processes_give_the_same_batches_and_resume(digits):
  expected = _digests(_iterator(digits), 30)
  cfg = dict(digits, num_workers=2)
  it = _iterator(cfg)
  try:
    assert _digests(it, 10) == expected[:10]
    state = json.loads(json.dumps(it.get_state()))  # mid-epoch
    assert _digests(it, 20) == expected[10:30]
  finally:
    it.close()
  resumed = _iterator(cfg)
  try:
    resumed.set_state(state)
    assert _digests(resumed, 20) == expected[10:30]  # resumes across the epoch boundary
  finally:
    resumed.close()


@pytest.mark.parametrize('position', [7, 23])  # mid-epoch; exactly at the epoch boundary
def test_state_resumes_bit_identically(digits, position):
  expected = _digests(_iterator(digits), position + 12)
  it = _iterator(digits)
  _digests(it, position)
  state = json.loads(json.dumps(it.get_state()))
  resumed = _iterator(digits)
  resumed.set_state(state)
  assert _digests(resumed, 12) == expected[position:]
  # A state is a position, not a snapshot: restoring it twice replays the same batches.
  resumed.set_state(state)
  assert _digests(resumed, 3) == expected[position : position + 3]


def test_eval_pass_is_identical_every_time(digits):
  def one_pass():
    return _digests(
      data.make_iterator(digits, split='test', global_batch_size=100, seed=0, train=False), 3
    )

  assert one_pass() == one_pass()


_BUILD = r"""
import hashlib, os, sys, time
import numpy as np
from jaxseg import data
cfg = {"name": "shapes_segmentation", "synthetic_size": 16, "num_train": 120, "num_test": 12,
       "read_threads": 1, "data_dir": sys.argv[1]}
open(sys.argv[2], "w").close()                      # ready: imports done
while not os.path.exists(os.path.join(sys.argv[1], "go")):
  time.sleep(0.01)
info = data.dataset_info(cfg)
batch = next(data.make_iterator(cfg, split="train", global_batch_size=120, seed=0, train=True))
print(info.splits, hashlib.sha1(batch["image"].tobytes() + batch["mask"].tobytes()).hexdigest())
"""


def test_processes_building_one_dataset_at_once_both_succeed(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  data_dir = str(tmp_path / 'shared')
  os.makedirs(data_dir)
  env = dict(os.environ, PYTHONPATH=root)
  procs = [
    subprocess.Popen(
      [sys.executable, '-c', _BUILD, data_dir, str(tmp_path / f'ready{i}')],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
      cwd=root,
    )
    for i in range(2)
  ]
  deadline = time.time() + 60
  while not all(os.path.exists(tmp_path / f'ready{i}') for i in range(2)):
    assert time.time() < deadline and all(p.poll() is None for p in procs), [
      p.communicate()[1][-2000:] for p in procs if p.poll() is not None
    ]
    time.sleep(0.05)
  open(os.path.join(data_dir, 'go'), 'w').close()  # both start building now
  outputs = [p.communicate(timeout=120) for p in procs]
  for p, (_, err) in zip(procs, outputs):
    assert p.returncode == 0, err[-3000:]
  lines = [out.strip().splitlines()[-1] for out, _ in outputs]
  assert lines[0] == lines[1] and "'train': 120" in lines[0]
  # One finished copy, no half-built folders left behind.
  versions = os.path.join(data_dir, 'shapes_segmentation')
  leftovers = [f for _, dirs, files in os.walk(versions) for f in dirs + files if 'incomplete' in f]
  assert not leftovers
