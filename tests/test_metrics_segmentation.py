"""Tests for jaxseg.metrics.segmentation against a NumPy transcription of FCN's score.py."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxseg.metrics import segmentation as seg_metrics
import reference_data

REFERENCE = reference_data.ROOT


def _score_py_fast_hist(a, b, n):
  """score.py's fast_hist: rows ground truth, labels outside [0, n) dropped."""
  k = (a >= 0) & (a < n)
  return np.bincount(n * a[k].astype(int) + b[k], minlength=n**2).reshape(n, n)


def _score_py_scores(hist):
  """score.py's compute_hist tail, verbatim in NumPy."""
  with np.errstate(divide='ignore', invalid='ignore'):
    acc = np.diag(hist).sum() / hist.sum()
    acc_cls = np.nanmean(np.diag(hist) / hist.sum(1))
    iu = np.diag(hist) / (hist.sum(1) + hist.sum(0) - np.diag(hist))
    mean_iu = np.nanmean(iu)
    freq = hist.sum(1) / hist.sum()
    fwavacc = (freq[freq > 0] * iu[freq > 0]).sum()
  return acc, acc_cls, mean_iu, fwavacc, iu


def _loop_confusion(labels, preds, n, ignore_label=255):
  cm = np.zeros((n, n), np.int64)
  for y, p in zip(labels.ravel(), preds.ravel()):
    if y != ignore_label:
      cm[y, p] += 1
  return cm


def _random_batch(seed, num_classes=6, shape=(3, 9, 11)):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, num_classes, size=shape)
  labels[labels == 4] = 1  # class 4 absent from ground truth ...
  preds = rng.integers(0, num_classes, size=shape)
  preds[preds == 4] = 0  # ... and from predictions: left out of the means
  preds[preds == 5] = 2  # class 5: in ground truth, never predicted (IoU 0, counted)
  labels[rng.random(shape) < 0.2] = 255
  return labels.astype(np.int32), preds.astype(np.int32)


def test_confusion_matrix_matches_loop_and_fast_hist():
  labels, preds = _random_batch(0)
  got = np.asarray(seg_metrics.confusion_matrix(jnp.asarray(labels), jnp.asarray(preds), 6))
  np.testing.assert_array_equal(got, _loop_confusion(labels, preds, 6))
  np.testing.assert_array_equal(got, _score_py_fast_hist(labels.ravel(), preds.ravel(), 6))
  assert got.sum() == np.sum(labels != 255)


def test_confusion_matrix_of_uint8_masks_does_not_overflow():
  labels, preds = _random_batch(4, num_classes=21)
  labels[labels == 5] = 20  # 20 * 21 + p overflows uint8 arithmetic
  got = seg_metrics.confusion_matrix(
    jnp.asarray(labels.astype(np.uint8)), jnp.asarray(preds.astype(np.uint8)), 21
  )
  np.testing.assert_array_equal(np.asarray(got), _loop_confusion(labels, preds, 21))


def test_confusion_matrix_is_jittable_and_sums_over_batches():
  labels, preds = _random_batch(1, shape=(4, 6, 6))
  fn = jax.jit(seg_metrics.confusion_matrix, static_argnums=2)
  whole = fn(jnp.asarray(labels), jnp.asarray(preds), 6)
  parts = sum(
    fn(jnp.asarray(labels[i : i + 1]), jnp.asarray(preds[i : i + 1]), 6) for i in range(4)
  )
  np.testing.assert_array_equal(np.asarray(whole), np.asarray(parts))


def test_confusion_matrix_mask_drops_padded_examples():
  labels, preds = _random_batch(2, shape=(3, 4, 5))
  valid = np.array([True, False, True])
  got = seg_metrics.confusion_matrix(
    jnp.asarray(labels), jnp.asarray(preds), 6, mask=valid[:, None, None]
  )
  want = _loop_confusion(labels[valid], preds[valid], 6)
  np.testing.assert_array_equal(np.asarray(got), want)


def test_scores_match_score_py_with_absent_classes():
  labels, preds = _random_batch(3)
  cm = seg_metrics.confusion_matrix(jnp.asarray(labels), jnp.asarray(preds), 6)
  got = seg_metrics.scores(cm)
  acc, acc_cls, mean_iu, fwavacc, iu = _score_py_scores(_loop_confusion(labels, preds, 6))
  np.testing.assert_allclose(got['pixel_accuracy'], acc)
  np.testing.assert_allclose(got['mean_accuracy'], acc_cls)
  np.testing.assert_allclose(got['mean_iou'], mean_iu)
  np.testing.assert_allclose(got['fw_iou'], fwavacc)
  np.testing.assert_allclose(got['per_class_iou'], iu)
  assert np.isnan(got['per_class_iou'][4])  # absent everywhere: left out of the mean
  assert got['per_class_iou'][5] == 0.0  # in GT, never predicted: counts as 0
  present = [c for c in range(6) if c != 4]
  np.testing.assert_allclose(got['mean_iou'], np.mean(got['per_class_iou'][present]))


def test_scores_closed_form():
  # GT: class0 4 pixels (3 right), class1 2 pixels (2 right), class2 predicted once, never GT.
  cm = np.array([[3, 0, 1], [0, 2, 0], [0, 0, 0]])
  s = seg_metrics.scores(cm)
  assert s['pixel_accuracy'] == pytest.approx(5 / 6)
  assert s['mean_accuracy'] == pytest.approx((3 / 4 + 1) / 2)  # class 2 has no GT: left out
  assert s['mean_iou'] == pytest.approx((3 / 4 + 1 + 0) / 3)  # class 2 predicted: IoU 0
  assert s['fw_iou'] == pytest.approx(4 / 6 * 3 / 4 + 2 / 6 * 1)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='labels must lie in'):
    seg_metrics.confusion_matrix(jnp.array([0, 9]), jnp.array([0, 1]), 3)
  with pytest.raises(ValueError, match='preds must lie in'):
    seg_metrics.confusion_matrix(jnp.array([0, 1]), jnp.array([0, 3]), 3)
  with pytest.raises(ValueError, match='must match'):
    seg_metrics.confusion_matrix(jnp.array([0, 1]), jnp.array([0]), 3)
  with pytest.raises(ValueError, match='num_classes'):
    seg_metrics.confusion_matrix(jnp.array([0]), jnp.array([0]), 0)
  with pytest.raises(ValueError, match='square'):
    seg_metrics.scores(np.zeros((2, 3)))


def _read_voc_pair(gt_path, pred_path):
  from PIL import Image
  from jaxseg.viz import palettes

  gt = np.array(Image.open(gt_path))
  if gt.ndim == 3:  # RGB rendering of the palette, void in VOC's cream colour
    gt = palettes.colors_to_labels(gt, palettes.voc_palette())
  pred = palettes.colors_to_labels(
    np.array(Image.open(pred_path).convert('RGB')), palettes.voc_palette()
  )
  return gt.astype(np.int32), pred.astype(np.int32)


@pytest.mark.skipif(
  not os.path.isdir(os.path.join(REFERENCE, 'voc-fcn-demo')), reason='shared reference data absent'
)
def test_real_fcn8s_prediction_on_voc_image():
  """FCN-8s's own demo output vs VOC ground truth (2007_000129): a real mean IoU."""
  folder = os.path.join(REFERENCE, 'voc-fcn-demo')
  gt, pred = _read_voc_pair(os.path.join(folder, 'label.png'), os.path.join(folder, 'output.png'))
  assert set(np.unique(gt)) == {0, 2, 15, 255} and set(np.unique(pred)) <= {0, 2, 15}
  cm = np.asarray(seg_metrics.confusion_matrix(jnp.asarray(gt), jnp.asarray(pred), 21))
  np.testing.assert_array_equal(cm, _loop_confusion(gt, pred, 21))
  got = seg_metrics.scores(cm)
  _, _, mean_iu, _, iu = _score_py_scores(cm.astype(np.float64))
  np.testing.assert_allclose(got['mean_iou'], mean_iu)
  # Only background, bicycle and person occur: 18 classes are absent and left out of the mean.
  assert np.sum(~np.isnan(got['per_class_iou'])) == 3
  assert 0.5 < got['mean_iou'] < 1.0  # a good prediction of a real image


@pytest.mark.skipif(
  not os.path.isdir(os.path.join(REFERENCE, 'voc-samples')), reason='shared reference data absent'
)
def test_real_deeplab_predictions_summed_over_images():
  folder = os.path.join(REFERENCE, 'voc-samples')
  names = sorted(f[: -len('_target.png')] for f in os.listdir(folder) if f.endswith('_target.png'))
  total = np.zeros((21, 21), np.int64)
  for name in names:
    gt, pred = _read_voc_pair(
      os.path.join(folder, f'{name}_target.png'), os.path.join(folder, f'{name}_pred.png')
    )
    total += np.asarray(seg_metrics.confusion_matrix(jnp.asarray(gt), jnp.asarray(pred), 21))
    total_loop = _loop_confusion(gt, pred, 21)
    assert total_loop.sum() == np.sum(gt != 255)
  got = seg_metrics.scores(total)
  _, _, mean_iu, fwavacc, _ = _score_py_scores(total.astype(np.float64))
  np.testing.assert_allclose([got['mean_iou'], got['fw_iou']], [mean_iu, fwavacc])
  assert 0.5 < got['mean_iou'] <= 1.0


@pytest.mark.parametrize('dtype', [np.int8, np.uint8, np.int32, np.uint32])
def test_label_range_check_counts_every_bad_label(dtype):
  # The check's one-comparison fast path (negative labels as large unsigned ones, ignore_label
  # discounted) against the definition, on every pair of one bad and one ignored label.
  from jaxseg.ops import _validation as v  # noqa: PLC0415 (the check itself)

  candidates = [0, 3, 4, 9, 255] if dtype in (np.uint8, np.uint32) else [-1, -100, 0, 3, 4, 9]
  for a in candidates:
    for b in candidates:
      values = np.array([0, a, b, 1], dtype)
      for ignore in (255, -1, 3):
        bad = [x for x in values.tolist() if not 0 <= x < 4 and x != ignore]
        if bad:
          with pytest.raises(ValueError, match='labels must lie in'):
            v.check_label_range(values, 4, ignore_label=ignore)
        else:
          v.check_label_range(values, 4, ignore_label=ignore)
      counted = [x for x in values.tolist() if not 0 <= x < 4]
      if counted:
        with pytest.raises(ValueError, match=r'preds must lie in \[0, 4\)'):
          v.check_label_range(values, 4, name='preds')
