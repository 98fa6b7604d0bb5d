"""The README's "Your own data" commands, run as written on small fixture folders.

The commands are read from README.md (the first bash block of that section), so the README
cannot drift from what works. Each runs as its own process from the repository root, as a user
runs it; only the README's relative data and run folders (``my_data/``, ``runs/``) are moved into
a scratch folder, and the training length and sizes are shrunk by overrides appended to the
training command.
"""

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
  '--config.total_steps=4',
  '--config.eval_every=2',
  '--config.checkpoint_every=2',
  '--config.log_every=2',
  '--config.batch_size=4',
  '--config.data.crop_size=32',
  '--config.data.eval_size=64',
  '--config.model.width_divisor=16',
  '--config.schedule.warmup_steps=1',
]
CLASSES = {
  'classes': [{'name': 'background', 'color': [0, 0, 0]}, {'name': 'cell', 'color': [255, 0, 0]}]
}


def readme_commands() -> list[list[str]]:
  """The commands of the first bash block under '## Your own data', continuation lines joined."""
  with open(os.path.join(REPO, 'README.md')) as f:
    text = f.read()
  section = text.split('## Your own data', 1)[1].split('\n## ', 1)[0]
  block = re.search(r'```bash\n(.*?)```', section, re.S).group(1)
  joined = block.replace('\\\n', ' ')
  return [
    shlex.split(line)
    for line in joined.splitlines()
    if line.strip() and not line.lstrip().startswith('#')
  ]


def _write_folders(root):
  rng = np.random.default_rng(0)
  for folder in ('images', 'masks', 'new_images'):
    os.makedirs(os.path.join(root, 'my_data', folder))
  for i in range(10):
    image = rng.integers(0, 100, (40, 48, 3), dtype=np.uint8)
    mask = np.zeros((40, 48), np.uint8)
    top, left = rng.integers(0, 20, 2)
    mask[top : top + 16, left : left + 20] = 1
    image[mask == 1, 0] = 230  # a red cell on a dark background
    Image.fromarray(image).save(os.path.join(root, 'my_data', 'images', f'cell_{i}.jpg'))
    colors = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)[mask]
    Image.fromarray(colors).save(os.path.join(root, 'my_data', 'masks', f'cell_{i}.png'))
  with open(os.path.join(root, 'my_data', 'masks', 'classes.json'), 'w') as f:
    json.dump(CLASSES, f)
  Image.fromarray(rng.integers(0, 255, (37, 53, 3), dtype=np.uint8)).save(
    os.path.join(root, 'my_data', 'new_images', 'odd_size.png')
  )
  Image.fromarray(rng.integers(0, 255, (30, 30), dtype=np.uint8)).save(
    os.path.join(root, 'my_data', 'new_images', 'grey.png')
  )


def test_the_section_has_the_four_commands():
  commands = readme_commands()
  assert [c[2] for c in commands] == [
    'experiments.main',
    'experiments.evaluate',
    'experiments.predict',
    'experiments.export',
  ]


@pytest.mark.slow
def test_readme_own_data_commands_run_end_to_end(tmp_path):
  _write_folders(tmp_path)
  env = dict(os.environ, PYTHONPATH=REPO, JAXSEG_DATA_DIR=str(tmp_path / 'cache'))
  env.pop('XLA_FLAGS', None)  # a user's machine: one CPU device, not the suite's forced eight
  outputs = []
  for command in readme_commands():
    assert command[0] == 'python'
    argv = [
      sys.executable,
      *(
        arg.replace('my_data/', f'{tmp_path}/my_data/').replace('runs/', f'{tmp_path}/runs/')
        for arg in command[1:]
      ),
    ]
    if command[2] == 'experiments.main':
      argv += TINY
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f'{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}'
    assert 'jaxseg: running on' in result.stdout
    outputs.append(result.stdout)
  run = tmp_path / 'runs' / 'mine'
  assert (run / 'curves.png').is_file()
  # evaluate: the table names the classes, and the numbers equal what training logged.
  assert 'cell' in outputs[1] and 'mean_iou' in outputs[1]
  [evaluated] = [p for p in os.listdir(run) if p.startswith('eval_validation_')]
  record = json.loads((run / evaluated).read_text())
  logged = [json.loads(line) for line in (run / 'metrics.jsonl').read_text().splitlines()]
  logged = [r for r in logged if r['split'] == 'eval' and r['step'] == record['step']][-1]
  for name, value in record['metrics'].items():
    assert value == logged[name] or (value is None and logged[name] != logged[name]), name
  # predict: a palette PNG at each input's own size and an overlay.
  predictions = run / 'predictions'
  for name, size in (('odd_size', (53, 37)), ('grey', (30, 30))):
    labels = Image.open(predictions / f'{name}.png')
    assert labels.mode == 'P' and labels.size == size
    assert set(np.unique(np.asarray(labels))) <= {0, 1}
    with Image.open(predictions / f'{name}_overlay.png') as overlay:
      assert overlay.size == size
  assert 'grey image repeated over RGB' in outputs[2]
  # export: the file runs at another size, equal to the restored model with its preprocessing.
  from jaxseg.export import load_exported  # pylint: disable=g-import-not-at-top
  from jaxseg.train import load_for_inference  # pylint: disable=g-import-not-at-top

  model, variables, _, preprocess = load_for_inference(str(run))
  pixels = np.random.default_rng(1).uniform(0, 255, (2, 45, 70, 3)).astype(np.float32)
  expected, _ = model.apply(variables, preprocess(pixels))
  np.testing.assert_allclose(
    load_exported(str(run / 'model.jaxexport'))(pixels), expected, rtol=1e-4, atol=1e-4
  )
