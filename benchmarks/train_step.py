r"""Images/s of one jitted train step (forward, softmax cross-entropy, backward, SGD momentum).

Usage::

  python benchmarks/train_step.py                       # every model, float32, this machine
  python benchmarks/train_step.py --torch               # + PyTorch's same step, ratios
  python benchmarks/train_step.py --torch --variants=before,after   # the issue-16 levers
  python benchmarks/train_step.py --dtype=bfloat16      # on an accelerator
  python benchmarks/train_step.py --json=out.json       # rows as JSON too (run_all.py)

For each model and jaxseg variant the step is jax.jit-compiled once (compile time reported);
then every step (jaxseg variants and PyTorch variants) runs ``--warmup`` times and is timed
``--steps`` times in alternating rounds, so a shared host's load hits them alike, each step
waited for with ``block_until_ready``. The table reports the median step time and
``batch / median`` images/s. The step is jaxseg's own (``jaxseg.train.steps.make_train_step``),
so what is measured is what training runs.

Variants (``--variants``): ``after`` is jaxseg as shipped; ``before`` swaps in, while tracing,
the convolution routing and max pooling before issue 16 (kept frozen here): the 1x1 convolution
as a 4-D einsum (its filter gradient contracting ``dy`` over N, H, W), every other convolution
XLA's own (since then atrous ones run as one matmul per tap, and those whose activations
outgrow the CPU's cache take their kernel gradient as one matmul per tap), and max pooling
differentiated by XLA (select-and-scatter). ``--torch`` times the same step in PyTorch
(``torch_models.py``: the same four architectures written inline), eager, in NCHW and in
``channels_last``, and with ``--torch-compile`` also ``torch.compile``d; the ratio column
divides jaxseg's images/s by the best PyTorch variant's.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxseg import losses, models
from jaxseg.ops import conv as conv_lib
from jaxseg.ops import pooling as pooling_lib
from jaxseg.train import optimizers, schedules, steps
from jaxseg.train.state import count_params, create_train_state

# name, registry name, model kwargs, image size, batch, classes, kind
CASES = {
  'resnet50': ('resnet50', {}, 224, 8, 1000, 'classification'),
  'vgg16': ('vgg16', {}, 224, 4, 1000, 'classification'),
  'fcn8s': ('fcn8s', {}, 256, 2, 21, 'segmentation'),
  'deeplab_v3': (
    'deeplab_v3',
    {'backbone': 'resnet50', 'output_stride': 8},
    256,
    2,
    21,
    'segmentation',
  ),
}

# --quick: narrow versions at 32x32, a smoke run of the same code (no PyTorch).
QUICK_CASES = {
  'resnet50': ('resnet50', {'num_filters': 4}, 32, 2, 10, 'classification'),
  'fcn8s': ('fcn8s', {'width_divisor': 16}, 32, 1, 3, 'segmentation'),
  'deeplab_v3': (
    'deeplab_v3',
    {'backbone': 'resnet50', 'output_stride': 8, 'width_divisor': 16},
    32,
    1,
    3,
    'segmentation',
  ),
}


class _CrossEntropy:
  """The benchmark's loss: mean softmax cross-entropy over examples (or pixels)."""

  name = 'benchmark'

  def loss(self, outputs, endpoints, batch):
    del endpoints
    logits = outputs.reshape(-1, outputs.shape[-1])
    labels = batch['label'].reshape(-1)
    return jnp.mean(losses.softmax_cross_entropy(logits, labels)), {}


def _sgd_config() -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    dict(
      name='sgd',
      learning_rate=0.01,
      momentum=0.9,
      nesterov=False,
      weight_decay=0.0,
      weight_decay_mask='kernels',
      lr_multipliers=(),
      grad_clip_norm=0.0,
      accumulate_steps=1,
    )
  )


# ---------------------------------------------------------------- the frozen "before" lowerings


def _einsum_pointwise(x, w, stride, pads):
  """jaxseg's 1x1 convolution before issue 16: a 4-D einsum."""
  x = jnp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))[:, :: stride[0], :: stride[1], :]
  return jnp.einsum('nhwc,co->nhwo', x, w[0, 0])


def _lowered_before(x, w, stride, pads, dilation, groups):
  """jaxseg's convolution routing before issue 16: 1x1 as the einsum, the rest XLA's."""
  if w.shape[:2] == (1, 1) and groups == 1:
    return _einsum_pointwise(x, w, stride, pads)
  return conv_lib._lax_conv(x, w, stride, pads, dilation, groups)


def _select_and_scatter_max_pool(x, window, stride, reduce_pads, pads):
  """jaxseg's max pool before issue 16: reduce_window, differentiated by XLA."""
  del pads
  return jax.lax.reduce_window(
    x, np.array(-np.inf, x.dtype), jax.lax.max, (1, *window, 1), (1, *stride, 1), reduce_pads
  )


@contextlib.contextmanager
def variant(name: str):
  """Routes jaxseg's ops through the `name` lowerings while tracing inside the block."""
  if name == 'after':
    yield
    return
  if name != 'before':
    raise SystemExit(f'--variants: unknown {name!r}; known: before, after')
  saved = conv_lib._conv2d_lowered, pooling_lib._max_pool_first_max
  conv_lib._conv2d_lowered = _lowered_before
  pooling_lib._max_pool_first_max = _select_and_scatter_max_pool
  try:
    yield
  finally:
    conv_lib._conv2d_lowered, pooling_lib._max_pool_first_max = saved


# ---------------------------------------------------------------- steps


def make_jax_step(name: str, *, dtype: str, lowering: str = 'after'):
  """Returns (run one step, info) for jaxseg's train step of CASES[name]."""
  registry_name, kwargs, size, batch, classes, kind = CASES[name]
  compute = steps.compute_dtype(dtype)
  model = models.get_model(registry_name, num_classes=classes, dtype=compute, **kwargs)
  tx = optimizers.make_optimizer(_sgd_config(), schedule=optax.constant_schedule(0.01))
  plateau_tx = schedules.make_plateau(
    ml_collections.ConfigDict(dict(decay_factor=0.1, min_delta=1e-4))
  )
  rng = np.random.default_rng(0)
  label_shape = (batch,) if kind == 'classification' else (batch, size, size)
  data = {
    'image': jnp.asarray(rng.normal(size=(batch, size, size, 3)), jnp.float32),
    'label': jnp.asarray(rng.integers(0, classes, label_shape), jnp.int32),
  }

  def init(key):
    variables = model.init(key, jnp.zeros((1, size, size, 3), compute), train=False)
    return create_train_state(
      variables=variables, tx=tx, plateau_tx=plateau_tx, rng=jax.random.key_data(key)
    )

  state = jax.jit(init)(jax.random.key(0))
  config = ml_collections.ConfigDict({'dtype': dtype, 'optimizer': _sgd_config()})
  step = jax.jit(
    steps.make_train_step(model=model, task=_CrossEntropy(), tx=tx, config=config), donate_argnums=0
  )
  start = time.perf_counter()
  with variant(lowering):
    compiled = step.lower(state, data).compile()
  compile_s = time.perf_counter() - start
  holder = {'state': state}

  def run():
    holder['state'], metrics = compiled(holder['state'], data)
    jax.block_until_ready(metrics['loss'])

  return run, {
    'params': count_params(state.params),
    'compile_s': compile_s,
    'size': size,
    'batch': batch,
  }


def make_torch_steps(name: str, *, compile_: bool) -> dict:
  """PyTorch's same step per variant: {'torch', 'torch/cl' (channels_last), 'torch/compile'}."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch_models  # pylint: disable=g-import-not-at-top

  _, _, size, batch, classes, kind = CASES[name]
  torch.manual_seed(0)
  images = torch.randn(batch, 3, size, size)
  label_shape = (batch,) if kind == 'classification' else (batch, size, size)
  labels = torch.randint(0, classes, label_shape)
  layouts = {'torch': torch.contiguous_format, 'torch/cl': torch.channels_last}
  runs = {}
  for variant_name, layout in layouts.items():
    model = torch_models.MODELS[name](torch, classes).to(memory_format=layout).train()
    optimizer = torch.optim.SGD(
      [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9
    )
    forward = model
    if compile_ and variant_name == 'torch/cl':
      forward = torch.compile(model)
    x = images.contiguous(memory_format=layout)

    def run(model=forward, optimizer=optimizer, x=x):
      optimizer.zero_grad(set_to_none=True)
      loss = torch.nn.functional.cross_entropy(model(x), labels)
      loss.backward()
      optimizer.step()

    runs['torch/compile' if forward is not model else variant_name] = run
    params = sum(p.numel() for p in model.parameters())
  return runs, params


def time_alternating(runs: dict, *, warmup: int, steps_: int) -> dict:
  """Median seconds per call of each function, called in alternating rounds."""
  for _ in range(warmup):
    for run in runs.values():
      run()
  times = {name: [] for name in runs}
  for _ in range(steps_):
    for name, run in runs.items():
      start = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(ts) for name, ts in times.items()}


def bench(
  name: str,
  *,
  dtype: str,
  variants: list,
  torch_: bool,
  torch_compile: bool,
  warmup: int,
  steps_: int,
) -> list:
  """Rows (dicts) of one model: one per jaxseg variant and one per PyTorch variant."""
  runs, info = {}, {}
  for lowering in variants:
    runs[f'jaxseg/{lowering}'], info[f'jaxseg/{lowering}'] = make_jax_step(
      name, dtype=dtype, lowering=lowering
    )
  if torch_:
    try:
      torch_runs, torch_params = make_torch_steps(name, compile_=torch_compile)
    except ImportError:
      torch_runs = {}
    for key, run in torch_runs.items():
      runs[key] = run
      info[key] = {
        'params': torch_params,
        'compile_s': float('nan'),
        'size': CASES[name][2],
        'batch': CASES[name][3],
      }
  medians = time_alternating(runs, warmup=warmup, steps_=steps_)
  torch_best = min((medians[k] for k in medians if k.startswith('torch')), default=None)
  rows = []
  for key, median in medians.items():
    row = dict(
      info[key],
      model=name,
      variant=key,
      dtype=dtype,
      step_ms=1e3 * median,
      images_per_s=info[key]['batch'] / median,
    )
    row['vs_best_torch'] = torch_best / median if torch_best else float('nan')
    rows.append(row)
  return rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument(
    '--models',
    default='resnet50,vgg16,fcn8s,deeplab_v3',
    help='comma-separated: ' + ', '.join(CASES),
  )
  parser.add_argument('--dtype', default='float32', choices=['float32', 'bfloat16'])
  parser.add_argument(
    '--variants', default='after', help='jaxseg lowerings, comma-separated: before, after (shipped)'
  )
  parser.add_argument('--warmup', type=int, default=2)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--torch', action='store_true', help='also time PyTorch, same step')
  parser.add_argument(
    '--torch-compile',
    action='store_true',
    help='also torch.compile (slow to compile on a small CPU)',
  )
  parser.add_argument('--json', default='', help='also write the rows to this JSON file')
  parser.add_argument(
    '--quick', action='store_true', help='narrow models at 32x32, one step, no PyTorch: a smoke run'
  )
  args = parser.parse_args(argv)
  if args.quick:
    CASES.clear()
    CASES.update(QUICK_CASES)
    args.models = ','.join(m for m in args.models.split(',') if m in QUICK_CASES)
    args.warmup, args.steps, args.torch = 0, 1, False

  print(
    f'device: {jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()}),'
    f' jax {jax.__version__}, dtype {args.dtype}, median of {args.steps} alternating rounds '
    f'after {args.warmup} warm-up, load {os.getloadavg()[0]:.1f}'
  )
  header = (
    f'{"model":<12} {"variant":<15} {"input":>9} {"batch":>5} {"params":>12} '
    f'{"compile s":>9} {"step ms":>9} {"img/s":>8} {"/ best torch":>12}'
  )
  print(header)
  print('-' * len(header))
  rows = []
  for name in args.models.split(','):
    if name not in CASES:
      raise SystemExit(f'--models: unknown {name!r}; known: {", ".join(CASES)}')
    if CASES[name][0] not in models.list_models():
      print(f'{name:<12} skipped: {CASES[name][0]!r} is not in the model registry yet')
      continue
    for r in bench(
      name,
      dtype=args.dtype,
      variants=args.variants.split(','),
      torch_=args.torch,
      torch_compile=args.torch_compile,
      warmup=args.warmup,
      steps_=args.steps,
    ):
      rows.append(r)
      print(
        f'{name:<12} {r["variant"]:<15} {r["size"]:>4}x{r["size"]:<4} {r["batch"]:>5} '
        f'{r["params"]:>12,} {r["compile_s"]:>9.1f} {r["step_ms"]:>9.1f} '
        f'{r["images_per_s"]:>8.2f} {r["vs_best_torch"]:>12.2f}',
        flush=True,
      )
  print(f'load {os.getloadavg()[0]:.1f}')
  if args.json:
    with open(args.json, 'w') as f:
      json.dump(rows, f, indent=1)
  return rows


if __name__ == '__main__':
  main()
