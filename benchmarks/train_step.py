r"""Images/s of one jitted train step (forward, softmax cross-entropy, backward, SGD momentum).

Usage::

  python benchmarks/train_step.py                       # every model, float32, this machine
  python benchmarks/train_step.py --models=resnet50 --steps=10 --torch
  python benchmarks/train_step.py --dtype=bfloat16      # on an accelerator

For each model the step is jax.jit-compiled once (compile time reported), run ``--warmup`` times,
then timed ``--steps`` times, each step waited for with ``block_until_ready``; the table reports the
median step time and ``batch / median`` images/s. ``--torch`` times the same step for PyTorch's
ResNet-50 (defined below, channels_last, ``torch.optim.SGD(momentum=0.9)``) where torch is
installed. The step is jaxseg's own (``jaxseg.train.steps.make_train_step``), so what is measured
is what training runs. Models not in the registry yet are skipped with a note.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from jaxseg import losses, models  # noqa: E402
from jaxseg.train import optimizers, schedules, steps  # noqa: E402
from jaxseg.train.state import count_params, create_train_state  # noqa: E402

# name, registry name, model kwargs, image size, batch, classes, kind
CASES = {
    'resnet50': ('resnet50', {}, 224, 8, 1000, 'classification'),
    'vgg16': ('vgg16', {}, 224, 4, 1000, 'classification'),
    'fcn8s': ('fcn8s', {}, 256, 2, 21, 'segmentation'),
    'deeplab_v3': ('deeplab_v3', {'backbone': 'resnet50', 'output_stride': 8}, 256, 2, 21,
                   'segmentation'),
}


class _CrossEntropy:
  """The benchmark's loss: mean softmax cross-entropy over examples (or pixels)."""
  name = 'benchmark'

  def loss(self, outputs, endpoints, batch, config):
    del endpoints, config
    logits = outputs.reshape(-1, outputs.shape[-1])
    labels = batch['label'].reshape(-1)
    return jnp.mean(losses.softmax_cross_entropy(logits, labels)), {}


def _sgd_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(
      name='sgd', learning_rate=0.01, momentum=0.9, nesterov=False, weight_decay=0.0,
      weight_decay_mask='kernels', lr_multipliers=(), grad_clip_norm=0.0, accumulate_steps=1))


def _time(fn, *, warmup: int, steps_: int) -> list[float]:
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(steps_):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def bench_jax(name: str, *, dtype: str, warmup: int, steps_: int) -> dict:
  registry_name, kwargs, size, batch, classes, kind = CASES[name]
  compute = steps.compute_dtype(dtype)
  model = models.get_model(registry_name, num_classes=classes, dtype=compute, **kwargs)
  tx = optimizers.make_optimizer(_sgd_config(), schedule=optax.constant_schedule(0.01))
  plateau_tx = schedules.make_plateau(ml_collections.ConfigDict(dict(decay_factor=0.1,
                                                                     min_delta=1e-4)))
  rng = np.random.default_rng(0)
  label_shape = (batch,) if kind == 'classification' else (batch, size, size)
  data = {'image': jnp.asarray(rng.normal(size=(batch, size, size, 3)), jnp.float32),
          'label': jnp.asarray(rng.integers(0, classes, label_shape), jnp.int32)}

  def init(key):
    variables = model.init(key, jnp.zeros((1, size, size, 3), compute), train=False)
    return create_train_state(variables=variables, tx=tx, plateau_tx=plateau_tx,
                              rng=jax.random.key_data(key))

  state = jax.jit(init)(jax.random.key(0))
  config = ml_collections.ConfigDict({'dtype': dtype})
  step = jax.jit(steps.make_train_step(model=model, task=_CrossEntropy(), tx=tx, config=config),
                 donate_argnums=0)
  start = time.perf_counter()
  compiled = step.lower(state, data).compile()
  compile_s = time.perf_counter() - start
  holder = {'state': state}

  def run():
    holder['state'], metrics = compiled(holder['state'], data)
    jax.block_until_ready(metrics['loss'])

  times = _time(run, warmup=warmup, steps_=steps_)
  median = statistics.median(times)
  return {'params': count_params(state.params), 'compile_s': compile_s, 'step_ms': 1e3 * median,
          'images_per_s': batch / median, 'size': size, 'batch': batch}


def _torch_resnet50(torch):
  """torchvision's ResNet-50 (v1.5: stride on the 3x3 conv), written inline."""
  nn = torch.nn

  class Bottleneck(nn.Module):
    def __init__(self, cin, width, stride):
      super().__init__()
      cout = width * 4
      self.conv1, self.bn1 = nn.Conv2d(cin, width, 1, bias=False), nn.BatchNorm2d(width)
      self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(width)
      self.conv3, self.bn3 = nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout)
      self.down = None
      if stride != 1 or cin != cout:
        self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                  nn.BatchNorm2d(cout))

    def forward(self, x):
      y = torch.relu(self.bn1(self.conv1(x)))
      y = torch.relu(self.bn2(self.conv2(y)))
      y = self.bn3(self.conv3(y))
      return torch.relu(y + (x if self.down is None else self.down(x)))

  layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(3, 2, 1)]
  cin = 64
  for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
    for b in range(blocks):
      layers.append(Bottleneck(cin, width, stride if b == 0 else 1))
      cin = width * 4
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, 1000)]
  return nn.Sequential(*layers)


def bench_torch(name: str, *, warmup: int, steps_: int) -> dict | None:
  if name != 'resnet50':
    return None
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  _, _, size, batch, classes, _ = CASES[name]
  model = _torch_resnet50(torch).to(memory_format=torch.channels_last).train()
  optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
  images = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
  labels = torch.randint(0, classes, (batch,))

  def run():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()

  median = statistics.median(_time(run, warmup=warmup, steps_=steps_))
  return {'step_ms': 1e3 * median, 'images_per_s': batch / median,
          'params': sum(p.numel() for p in model.parameters())}


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--models', default=','.join(CASES), help='comma-separated: ' +
                      ', '.join(CASES))
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--torch', action='store_true', help='also time PyTorch (resnet50)')
  args = parser.parse_args()

  print(f'device: {jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()}),'
        f' jax {jax.__version__}, dtype {args.dtype}, median of {args.steps} steps after '
        f'{args.warmup} warm-up')
  header = (f'{"model":<12} {"input":>9} {"batch":>5} {"params":>12} {"compile s":>9} '
            f'{"step ms":>9} {"img/s":>8} {"torch img/s":>11}')
  print(header)
  print('-' * len(header))
  for name in args.models.split(','):
    if name not in CASES:
      raise SystemExit(f'--models: unknown {name!r}; known: {", ".join(CASES)}')
    if CASES[name][0] not in models.list_models():
      print(f'{name:<12} skipped: {CASES[name][0]!r} is not in the model registry yet')
      continue
    r = bench_jax(name, dtype=args.dtype, warmup=args.warmup, steps_=args.steps)
    t = bench_torch(name, warmup=args.warmup, steps_=args.steps) if args.torch else None
    torch_text = f'{t["images_per_s"]:>11.2f}' if t else f'{"-":>11}'
    print(f'{name:<12} {r["size"]:>4}x{r["size"]:<4} {r["batch"]:>5} {r["params"]:>12,} '
          f'{r["compile_s"]:>9.1f} {r["step_ms"]:>9.1f} {r["images_per_s"]:>8.2f} {torch_text}',
          flush=True)


if __name__ == '__main__':
  main()
