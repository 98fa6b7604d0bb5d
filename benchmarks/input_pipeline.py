"""Images per second of the jaxseg input pipelines (decode, augment, batch), printed as a table.

Pipelines: ``digits`` (classification, 32x32), ``shapes_segmentation`` (64x64),
``synthetic_saliency`` (64x64), and a VOC-like fixture (random 512x512 JPEGs with palette masks in
the official VOCdevkit layout) read through ``voc2012_segmentation`` with DeepLab's training
augmentation (scale 0.5-2.0, 321x321 crops, flips). Datasets are built once in a temporary
directory (not timed); then ``--batches`` training batches are timed after ``--warmup`` batches.

Usage::

  python benchmarks/input_pipeline.py [--batch_size 32] [--batches 20] [--num_workers 0]
      [--read_threads 4] [--voc_images 64]

Compare ``images/s`` with the train step's images/s (benchmarks/train_step.py): the pipeline
should deliver at least twice what the step consumes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from absl import flags  # noqa: E402

flags.FLAGS.mark_as_parsed()

from jaxseg import data  # noqa: E402


def write_voc_fixture(root: str, *, num_images: int, size: int = 512, seed: int = 0) -> None:
  """Random JPEGs and palette masks of ``size`` x ``size`` in the VOCdevkit layout."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from jaxseg.data.builders import voc  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  base = os.path.join(root, "VOCdevkit", "VOC2012")
  for sub in ("JPEGImages", "SegmentationClass", os.path.join("ImageSets", "Segmentation")):
    os.makedirs(os.path.join(base, sub), exist_ok=True)
  palette = voc.voc_palette().ravel().tolist()
  ids = [f"2012_{i:06d}" for i in range(num_images)]
  yy, xx = np.mgrid[0:size, 0:size]
  for i, image_id in enumerate(ids):
    # Smooth content compresses like a photograph (random noise would be unrealistically large).
    image = np.stack([(yy * (i + 1) // 4) % 256, (xx * 3 // 4) % 256,
                      ((yy + xx) // 4 + 30 * i) % 256], -1).astype(np.uint8)
    image = np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)
    Image.fromarray(image).save(os.path.join(base, "JPEGImages", image_id + ".jpg"), quality=90)
    mask = ((yy // 64 + xx // 64 + i) % 21).astype(np.uint8)
    mask[::97] = 255
    png = Image.fromarray(mask, mode="P")
    png.putpalette(palette)
    png.save(os.path.join(base, "SegmentationClass", image_id + ".png"))
  for name, part in (("train", ids), ("val", ids[: max(1, num_images // 8)])):
    with open(os.path.join(base, "ImageSets", "Segmentation", name + ".txt"), "w") as f:
      f.write("\n".join(part) + "\n")


def time_pipeline(cfg: dict, *, batch_size: int, batches: int, warmup: int) -> tuple[float, tuple]:
  """Images per second over ``batches`` training batches, and the image batch shape."""
  iterator = data.make_iterator(cfg, split="train", global_batch_size=batch_size, seed=0,
                                train=True)
  try:
    for _ in range(warmup):
      batch = next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
      batch = next(iterator)
    elapsed = time.perf_counter() - start
  finally:
    iterator.close()
  return batches * batch_size / elapsed, batch["image"].shape


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--batches", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--num_workers", type=int, default=0)
  parser.add_argument("--read_threads", type=int, default=4)
  parser.add_argument("--voc_images", type=int, default=64)
  args = parser.parse_args()

  with tempfile.TemporaryDirectory() as tmp:
    common = {"data_dir": os.path.join(tmp, "data"), "num_workers": args.num_workers,
              "read_threads": args.read_threads}
    write_voc_fixture(os.path.join(tmp, "manual"), num_images=args.voc_images)
    pipelines = {
        "digits": dict(common, name="digits"),
        "shapes_segmentation": dict(common, name="shapes_segmentation", num_train=512,
                                    num_test=16),
        "synthetic_saliency": dict(common, name="synthetic_saliency", num_train=512,
                                   num_test=16),
        "voc-like 512px, crop 321": dict(common, name="voc2012_segmentation",
                                         manual_dir=os.path.join(tmp, "manual"), crop_size=321),
    }
    rows = []
    for label, cfg in pipelines.items():
      build_start = time.perf_counter()
      data.dataset_info(cfg)
      build = time.perf_counter() - build_start
      rate, shape = time_pipeline(cfg, batch_size=args.batch_size, batches=args.batches,
                                  warmup=args.warmup)
      rows.append((label, "x".join(map(str, shape[1:])), build, rate))
    print(f"\nbatch {args.batch_size}, {args.batches} batches, num_workers={args.num_workers}, "
          f"read_threads={args.read_threads}, {os.cpu_count()} CPUs")
    print(f"| {'pipeline':<26} | {'image':<11} | {'build s':>8} | {'images/s':>9} |")
    print(f"|{'-' * 28}|{'-' * 13}|{'-' * 10}|{'-' * 11}|")
    for label, shape, build, rate in rows:
      print(f"| {label:<26} | {shape:<11} | {build:8.1f} | {rate:9.0f} |")


if __name__ == "__main__":
  main()
