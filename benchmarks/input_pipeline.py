"""Images per second of the jaxseg input pipelines (decode, augment, batch), printed as a table.

Pipelines: ``digits`` (classification, 32x32), ``shapes_segmentation`` (64x64),
``synthetic_saliency`` (64x64), an ImageNet-like fixture (375x500 JPEGs in the layout of the
ILSVRC2012 tars) read through ``imagenet2012`` with ``augment='imagenet'`` (random-resized-crop
to 224, flips), and a VOC-like fixture (random 512x512 JPEGs with palette masks in the official
VOCdevkit layout) read through ``voc2012_segmentation`` with DeepLab's training augmentation
(scale 0.5-2.0, 321x321 crops, flips). Datasets are built once in a temporary directory (not
timed); then ``--batches`` training batches are timed after ``--warmup`` batches.

Usage::

  python benchmarks/input_pipeline.py [--batch_size 32] [--batches 20] [--num_workers 0]
      [--read_threads 4] [--voc_images 64] [--imagenet_images 64]
      [--step_rate imagenet=0.95 --step_rate voc=0.17]

A pipeline must deliver at least twice the images/s the train step consumes (so the step never
waits, even when a batch is slow). ``--step_rate KEY=IMAGES_PER_S`` takes the train step's rate
from ``benchmarks/train_step.py`` (resnet50 for ``imagenet``, fcn8s or deeplab_v3 for ``voc``,
measured on the same machine) and adds the columns ``step img/s`` and ``margin`` (pipeline /
step): below 2, raise ``data.num_workers`` or ``data.read_threads``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

from jaxseg import data  # noqa: E402


def write_voc_fixture(root: str, *, num_images: int, size: int = 512, seed: int = 0) -> None:
  """Random JPEGs and palette masks of ``size`` x ``size`` in the VOCdevkit layout."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jaxseg.data.builders import voc  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)
  base = os.path.join(root, 'VOCdevkit', 'VOC2012')
  for sub in ('JPEGImages', 'SegmentationClass', os.path.join('ImageSets', 'Segmentation')):
    os.makedirs(os.path.join(base, sub), exist_ok=True)
  palette = voc.voc_palette().ravel().tolist()
  ids = [f'2012_{i:06d}' for i in range(num_images)]
  yy, xx = np.mgrid[0:size, 0:size]
  for i, image_id in enumerate(ids):
    # Smooth content compresses like a photograph (random noise would be unrealistically large).
    image = np.stack(
      [(yy * (i + 1) // 4) % 256, (xx * 3 // 4) % 256, ((yy + xx) // 4 + 30 * i) % 256], -1
    ).astype(np.uint8)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(os.path.join(base, 'JPEGImages', image_id + '.jpg'), quality=90)
    mask = ((yy // 64 + xx // 64 + i) % 21).astype(np.uint8)
    mask[::97] = 255
    png = Image.fromarray(mask, mode='P')
    png.putpalette(palette)
    png.save(os.path.join(base, 'SegmentationClass', image_id + '.png'))
  for name, part in (('train', ids), ('val', ids[: max(1, num_images // 8)])):
    with open(os.path.join(base, 'ImageSets', 'Segmentation', name + '.txt'), 'w') as f:
      f.write('\n'.join(part) + '\n')


def write_imagenet_fixture(root: str, *, num_images: int, size=(375, 500), seed: int = 0) -> None:
  """``ILSVRC2012_img_{train,val}.tar`` of smooth random JPEGs: per-class inner tars for train."""
  import io  # pylint: disable=g-import-not-at-top
  import tarfile  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0 : size[0], 0 : size[1]]

  def jpeg(i):
    image = np.stack([(yy * (i + 2) // 5) % 256, (xx * 2 // 3) % 256, ((yy + xx) // 3) % 256], -1)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format='JPEG', quality=90)
    return buffer.getvalue()

  def add(tar, name, content):
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))

  os.makedirs(root, exist_ok=True)
  synsets = ['n01440764', 'n01443537', 'n01484850', 'n01491361']
  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_train.tar'), 'w') as outer:
    for k, synset in enumerate(synsets):
      inner = io.BytesIO()
      with tarfile.open(fileobj=inner, mode='w') as tar:
        for i in range(k, num_images, len(synsets)):
          add(tar, f'{synset}_{i}.JPEG', jpeg(i))
      add(outer, synset + '.tar', inner.getvalue())
  with tarfile.open(os.path.join(root, 'ILSVRC2012_img_val.tar'), 'w') as tar:
    for i in range(1, 3):
      add(tar, f'ILSVRC2012_val_{i:08d}.JPEG', jpeg(i))


def time_pipeline(cfg: dict, *, batch_size: int, batches: int, warmup: int) -> tuple[float, tuple]:
  """Images per second over ``batches`` training batches, and the image batch shape."""
  iterator = data.make_iterator(
    cfg, split='train', global_batch_size=batch_size, seed=0, train=True
  )
  try:
    for _ in range(warmup):
      batch = next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(iterator)
    elapsed = time.perf_counter() - start
  finally:
    iterator.close()
  return batches * batch_size / elapsed, batch['image'].shape


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch_size', type=int, default=32)
  parser.add_argument('--batches', type=int, default=20)
  parser.add_argument('--warmup', type=int, default=3)
  parser.add_argument('--num_workers', type=int, default=0)
  parser.add_argument('--read_threads', type=int, default=4)
  parser.add_argument('--voc_images', type=int, default=64)
  parser.add_argument('--imagenet_images', type=int, default=64)
  parser.add_argument(
    '--step_rate',
    action='append',
    default=[],
    help='KEY=IMAGES_PER_S of the train step (keys: digits, shapes, saliency, '
    'imagenet, voc), from benchmarks/train_step.py',
  )
  args = parser.parse_args()
  step_rates = {}
  for item in args.step_rate:
    key, _, value = item.partition('=')
    try:
      step_rates[key] = float(value)
    except ValueError:
      parser.error(f'--step_rate must be KEY=IMAGES_PER_S, got {item!r}')

  with tempfile.TemporaryDirectory() as tmp:
    common = {
      'data_dir': os.path.join(tmp, 'data'),
      'num_workers': args.num_workers,
      'read_threads': args.read_threads,
    }
    write_voc_fixture(os.path.join(tmp, 'manual'), num_images=args.voc_images)
    write_imagenet_fixture(os.path.join(tmp, 'manual_imagenet'), num_images=args.imagenet_images)
    # key (for --step_rate), label, options
    pipelines = [
      ('digits', 'digits', dict(common, name='digits')),
      (
        'shapes',
        'shapes_segmentation',
        dict(common, name='shapes_segmentation', num_train=512, num_test=16),
      ),
      (
        'saliency',
        'synthetic_saliency',
        dict(common, name='synthetic_saliency', num_train=512, num_test=16),
      ),
      (
        'imagenet',
        'imagenet-like 375x500, RRC 224',
        dict(
          common,
          name='imagenet2012',
          manual_dir=os.path.join(tmp, 'manual_imagenet'),
          augment='imagenet',
          image_size=224,
        ),
      ),
      (
        'voc',
        'voc-like 512px, crop 321',
        dict(
          common, name='voc2012_segmentation', manual_dir=os.path.join(tmp, 'manual'), crop_size=321
        ),
      ),
    ]
    rows = []
    for key, label, cfg in pipelines:
      build_start = time.perf_counter()
      data.dataset_info(cfg)
      build = time.perf_counter() - build_start
      rate, shape = time_pipeline(
        cfg, batch_size=args.batch_size, batches=args.batches, warmup=args.warmup
      )
      rows.append((key, label, 'x'.join(map(str, shape[1:])), build, rate))
    print(
      f'\nbatch {args.batch_size}, {args.batches} batches, num_workers={args.num_workers}, '
      f'read_threads={args.read_threads}, {os.cpu_count()} CPUs'
    )
    print(
      f'| {"pipeline":<30} | {"image":<11} | {"build s":>8} | {"images/s":>9} | '
      f'{"step img/s":>10} | {"margin":>12} |'
    )
    print(f'|{"-" * 32}|{"-" * 13}|{"-" * 10}|{"-" * 11}|{"-" * 12}|{"-" * 14}|')
    for key, label, shape, build, rate in rows:
      step, margin = '-', '-'
      if key in step_rates:
        step = f'{step_rates[key]:.2f}'
        ratio = rate / step_rates[key]
        margin = f'{ratio:.1f}x ' + ('ok' if ratio >= 2 else 'LOW')
      print(
        f'| {label:<30} | {shape:<11} | {build:8.1f} | {rate:9.0f} | {step:>10} | {margin:>12} |'
      )


if __name__ == '__main__':
  main()
