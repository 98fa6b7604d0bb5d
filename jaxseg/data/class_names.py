"""Published class names of the registered datasets, in label order.

One copy each: the registry's specs, the tasks' metric names (``iou/<class name>``) and the
overlays read them from here (VOC and Cityscapes live beside their palettes in
:mod:`jaxseg.viz.palettes`).
"""

from __future__ import annotations

import functools
import importlib.util
import os

from jaxseg.viz import palettes

__all__ = [
  'ADE20K',
  'CIFAR10',
  'CIFAR100',
  'CITYSCAPES',
  'DIGITS',
  'VOC',
  'imagenet2012',
]

VOC = palettes.VOC_CLASSES
CITYSCAPES = palettes.CITYSCAPES_CLASSES
DIGITS = tuple(str(k) for k in range(10))

# CIFAR-10's batches.meta label_names.
CIFAR10 = (
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
)

# CIFAR-100's meta fine_label_names (label k is the k-th; alphabetical in the file).
CIFAR100 = tuple(
  """
  apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
  camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile
  cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp
  lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom
  oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine
  possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake
  spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor
  train trout tulip turtle wardrobe whale willow_tree wolf woman worm
  """.split()
)

# ADE20K SceneParsing's objectInfo150 (CSAILVision/sceneparsing), the first name of each row as
# mmsegmentation's ADE20KDataset lists them; mask value k + 1 is class k (0, "other", is ignored).
ADE20K = (
  'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road', 'bed', 'windowpane', 'grass',
  'cabinet', 'sidewalk', 'person', 'earth', 'door', 'table', 'mountain', 'plant', 'curtain',
  'chair', 'car', 'water', 'painting', 'sofa', 'shelf', 'house', 'sea', 'mirror', 'rug', 'field',
  'armchair', 'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp', 'bathtub', 'railing',
  'cushion', 'base', 'box', 'column', 'signboard', 'chest of drawers', 'counter', 'sand', 'sink',
  'skyscraper', 'fireplace', 'refrigerator', 'grandstand', 'path', 'stairs', 'runway', 'case',
  'pool table', 'pillow', 'screen door', 'stairway', 'river', 'bridge', 'bookcase', 'blind',
  'coffee table', 'toilet', 'flower', 'book', 'hill', 'bench', 'countertop', 'stove', 'palm',
  'kitchen island', 'computer', 'swivel chair', 'boat', 'bar', 'arcade machine', 'hovel', 'bus',
  'towel', 'light', 'truck', 'tower', 'chandelier', 'awning', 'streetlight', 'booth',
  'television receiver', 'airplane', 'dirt track', 'apparel', 'pole', 'land', 'bannister',
  'escalator', 'ottoman', 'bottle', 'buffet', 'poster', 'stage', 'van', 'ship', 'fountain',
  'conveyer belt', 'canopy', 'washer', 'plaything', 'swimming pool', 'stool', 'barrel', 'basket',
  'waterfall', 'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball', 'food', 'step', 'tank',
  'trade name', 'microwave', 'pot', 'animal', 'bicycle', 'lake', 'dishwasher', 'screen',
  'blanket', 'sculpture', 'hood', 'sconce', 'vase', 'traffic light', 'tray', 'ashcan', 'fan',
  'pier', 'crt screen', 'plate', 'monitor', 'bulletin board', 'shower', 'radiator', 'glass',
  'clock', 'flag',
)  # fmt: skip


@functools.cache
def imagenet2012() -> tuple[str, ...]:
  """ImageNet-2012's 1000 WordNet ids in label order: tfds's own names (its ``labels.txt``).

  The file ships inside the tensorflow_datasets package; it is found without importing tfds.
  """
  spec = importlib.util.find_spec('tensorflow_datasets')
  if spec is None or not spec.submodule_search_locations:
    raise ValueError('imagenet2012 class names need tensorflow_datasets (its labels.txt).')
  path = os.path.join(spec.submodule_search_locations[0], 'datasets', 'imagenet2012', 'labels.txt')
  with open(path) as f:
    return tuple(line.strip() for line in f if line.strip())
