"""Inference from a trained run: load_for_inference, evaluation without changes, prediction.

One tiny LeNet-5 run on scikit-learn's digits is trained in-process for the module (6 steps,
checkpoints at 3 and 6); everything here reads it and must leave it unchanged.
"""

import csv
import hashlib
import json
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from experiments.configs import lenet5_digits
from jaxseg import train
from jaxseg.train import evaluation
from jaxseg.train import inference
from jaxseg.train import prediction


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('lenet_run'))
  config = lenet5_digits.get_config()
  config.total_steps, config.eval_every, config.checkpoint_every = 6, 3, 3
  config.log_every, config.batch_size, config.schedule.warmup_steps = 3, 8, 1
  config.data.data_dir = str(tmp_path_factory.mktemp('data'))
  train.train_and_evaluate(config, workdir)
  return workdir


def _digest(folder):
  digest = hashlib.sha256()
  for root, _, files in sorted(os.walk(folder)):
    for name in sorted(files):
      with open(os.path.join(root, name), 'rb') as f:
        digest.update(name.encode() + f.read())
  return digest.hexdigest()


def test_load_for_inference_restores_the_chosen_checkpoint(run_dir):
  model, variables, config, preprocess = train.load_for_inference(run_dir, checkpoint='latest')
  assert config.model.name == 'lenet5' and set(variables) == {'params'}
  pixels = np.full((1, 32, 32, 3), 255, np.uint8)
  np.testing.assert_allclose(preprocess(pixels), 1.0)  # the run's normalisation: 'none'
  logits, _ = model.apply(variables, preprocess(pixels))
  assert logits.shape == (1, 10)
  assert inference.load_run(run_dir, checkpoint=3).step == 3
  assert inference.load_run(run_dir, checkpoint='latest').step == 6


@pytest.mark.parametrize(
  'checkpoint, error, message',
  [
    ('7', ValueError, r"checkpoint must be 'best', 'latest' or one of the saved steps \[3, 6\]"),
    ('newest', ValueError, r"got 'newest'"),
  ],
)
def test_bad_checkpoint_names_the_saved_steps(run_dir, checkpoint, error, message):
  with pytest.raises(error, match=message):
    inference.load_run(run_dir, checkpoint=checkpoint)


def test_a_folder_that_is_not_a_run_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match='has no config.json'):
    inference.load_run(str(tmp_path))


def test_evaluate_reproduces_the_logged_numbers_and_changes_nothing(run_dir):
  before = _digest(os.path.join(run_dir, 'checkpoints'))
  run = inference.load_run(run_dir, checkpoint=6)
  metrics = evaluation.evaluate_run(run)
  logged = evaluation.logged_metrics(run_dir, 6)
  for name, value in metrics.items():
    assert value == logged[name], name
  assert _digest(os.path.join(run_dir, 'checkpoints')) == before
  path = evaluation.write_results(run_dir, run.info.eval_split, 6, metrics, evaluation.Recipe())
  assert json.loads(pathlib.Path(path).read_text())['metrics']['accuracy'] == logged['accuracy']


def test_predict_classification_csv_and_image_conversions(run_dir, tmp_path):
  run = inference.load_run(run_dir)
  rng = np.random.default_rng(0)
  files = {
    'rgb.png': Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)),
    'grey.png': Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8)),
    'deep.png': Image.fromarray(rng.integers(0, 60000, (20, 20)).astype(np.uint16)),
  }
  for name, image in files.items():
    image.save(tmp_path / name)
  (tmp_path / 'broken.png').write_bytes(b'not an image')
  found = prediction.list_inputs(str(tmp_path))
  assert [os.path.basename(f) for f in found] == ['broken.png', 'deep.png', 'grey.png', 'rgb.png']
  with pytest.raises(ValueError, match=r'cannot read image .*broken\.png'):
    prediction.read_image(found[0])
  assert 'scaled to 8 bits' in prediction.read_image(found[1])[1]
  assert prediction.read_image(found[2])[1] == 'grey image repeated over RGB'
  writer = prediction.ClassificationCsv(str(tmp_path / 'predictions.csv'), run.task.class_names)
  for path in found[1:]:
    probabilities = prediction.predict_classification(run, prediction.read_image(path)[0])
    np.testing.assert_allclose(probabilities.sum(), 1.0, rtol=1e-6)
    writer.add(os.path.basename(path), probabilities)
  writer.close()
  rows = list(csv.reader((tmp_path / 'predictions.csv').read_text().splitlines()))
  assert rows[0][:3] == ['file', 'class_1', 'probability_1'] and len(rows) == 4
  probabilities = [float(p) for p in rows[1][2::2]]
  assert probabilities == sorted(probabilities, reverse=True)


@pytest.mark.parametrize(
  'text, parser, message',
  [
    ('513', evaluation.parse_sliding_window, "'CROP,STRIDE'"),
    ('0,4', evaluation.parse_sliding_window, 'positive'),
    ('1,nan', evaluation.parse_scales, 'finite and positive'),
    ('1,big', evaluation.parse_scales, 'comma-separated'),
  ],
)
def test_recipe_flags_are_checked(text, parser, message):
  with pytest.raises(ValueError, match=message):
    parser(text)


def test_segmentation_recipe_averages_flips_and_runs_the_crf_on_pixels():
  import jax  # pylint: disable=g-import-not-at-top
  import ml_collections  # pylint: disable=g-import-not-at-top
  from jaxseg.data import DatasetInfo, transforms  # pylint: disable=g-import-not-at-top
  from jaxseg.inference.segmentation import softmax  # pylint: disable=g-import-not-at-top
  from jaxseg.models import get_model  # pylint: disable=g-import-not-at-top

  model = get_model('fcn32s', num_classes=3, width_divisor=32)
  variables = model.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32))
  leaves, tree = jax.tree.flatten(variables)  # random (not zero-initialised) score layers
  noise = np.random.default_rng(1)
  variables = jax.tree.unflatten(tree, [v + 0.1 * noise.normal(size=v.shape) for v in leaves])
  info = DatasetInfo(
    task='segmentation',
    num_classes=3,
    ignore_label=255,
    image_shape=(32, 32, 3),
    splits={},
    normalization='imagenet',
    class_names=('a', 'b', 'c'),
  )
  run = inference.InferenceRun(
    model,
    variables,
    ml_collections.ConfigDict({}),
    info,
    None,
    inference.make_preprocess('imagenet'),
    0,
  )
  pixels = np.random.default_rng(2).integers(0, 256, (1, 32, 32, 3)).astype(np.uint8)
  images = transforms.normalize(pixels, 'imagenet')
  forward = lambda x: softmax(np.asarray(model.apply(variables, x)[0], np.float64))
  expected = 0.5 * (forward(images) + forward(images[:, :, ::-1])[:, :, ::-1])
  flipped = evaluation.segmentation_logits(run, images, evaluation.Recipe(flip=True))
  np.testing.assert_allclose(np.exp(flipped), expected, rtol=1e-4, atol=1e-6)
  refined = np.exp(evaluation.segmentation_logits(run, images, evaluation.Recipe(crf=True)))
  np.testing.assert_allclose(refined.sum(-1), 1.0, rtol=1e-4)
  assert not np.allclose(refined, forward(images), atol=1e-3)  # the CRF changed the marginals
