r"""Images/s of one jitted train step (forward, softmax cross-entropy, backward, SGD momentum).

Usage::

  python benchmarks/train_step.py                       # every model, float32, this machine
  python benchmarks/train_step.py --torch               # + PyTorch's same step, ratios
  python benchmarks/train_step.py --torch --torch-compile --variants=before,after  # issue 16
  python benchmarks/train_step.py --dtype=bfloat16      # on an accelerator
  python benchmarks/train_step.py --json=out.json       # rows as JSON too (run_all.py)

Each variant of each model (jaxseg's lowerings, PyTorch's) is built, jax.jit-compiled
(compile time reported), run ``--warmup`` times and timed ``--steps`` times, each step waited
for (``block_until_ready``; ``torch.cuda.synchronize`` on a GPU). The table reports the median
step time, ``batch / median`` images/s, and the minor page faults and kernel time a step. The
step is jaxseg's own (``jaxseg.train.steps.make_train_step``), so what is measured is what
training runs.

Isolation (``--isolation``): ``process`` (the default) times every variant in a fresh process of
its own, as a user runs one framework, in ``--passes`` alternating passes (the table gives the
median over them), under ``--malloc``'s allocator: by default the one the training binaries run
with (``experiments/huge_pages.py``: malloc on transparent huge pages where the machine allows),
the same for PyTorch's processes. ``shared`` times all variants of a model in this one process
in alternating rounds; on a CPU that is not a fair measure of memory-heavy steps: XLA:CPU
allocates each step's temporaries afresh, and with another framework's model in the same heap
the page faults that costs moved the same variant 10-20% between runs (benchmarks/README.md,
lever 5).

Variants (``--variants``): ``after`` is jaxseg as shipped; ``before`` swaps in, while tracing,
the convolution routing and max pooling before issue 16 (kept frozen here): the 1x1 convolution
as a 4-D einsum (its filter gradient contracting ``dy`` over N, H, W), every other convolution
XLA's own (since then atrous ones run as one matmul per tap, those whose activations outgrow
the CPU's cache take their kernel gradient as one matmul per tap, and those whose kernel
outgrows it over no more pixels than channels run as one matmul of patches), and max pooling
differentiated by XLA (select-and-scatter). ``--torch`` times the same step in PyTorch
(``torch_models.py``: the same four architectures written inline; on CUDA where PyTorch has it),
eager, in NCHW and in ``channels_last``, or with ``--torch-compile`` NCHW eager and
``torch.compile`` of the ``channels_last`` model; the ratio column divides jaxseg's images/s by
the best PyTorch variant's.
"""

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from experiments import huge_pages as binaries_huge_pages
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

LOWERINGS = ('before', 'after')  # --variants: jaxseg before issue 16's levers, and as shipped


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
    raise SystemExit(f'--variants: unknown {name!r}; known: {", ".join(LOWERINGS)}')
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


def torch_variants(*, compile_: bool) -> tuple:
  """PyTorch's variants timed: eager NCHW, and channels_last eager or ``torch.compile``d."""
  return ('torch', 'torch/compile') if compile_ else ('torch', 'torch/cl')


def make_torch_step(name: str, variant_name: str):
  """Returns (run one step, parameter count) for PyTorch's same step of CASES[name].

  ``variant_name`` is one of ``torch`` (NCHW), ``torch/cl`` (``channels_last``) and
  ``torch/compile`` (``torch.compile`` of the ``channels_last`` model). The step runs on CUDA
  where PyTorch has it (then each step is synchronized, as jaxseg's is blocked on), else on the
  CPU.
  """
  import torch  # pylint: disable=g-import-not-at-top
  import torch_models  # pylint: disable=g-import-not-at-top

  _, _, size, batch, classes, kind = CASES[name]
  device = 'cuda' if torch.cuda.is_available() else 'cpu'
  torch.manual_seed(0)
  layout = torch.contiguous_format if variant_name == 'torch' else torch.channels_last
  images = torch.randn(batch, 3, size, size).to(device).contiguous(memory_format=layout)
  label_shape = (batch,) if kind == 'classification' else (batch, size, size)
  labels = torch.randint(0, classes, label_shape).to(device)
  model = torch_models.MODELS[name](torch, classes).to(device, memory_format=layout).train()
  optimizer = torch.optim.SGD(
    [p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9
  )
  forward = torch.compile(model) if variant_name == 'torch/compile' else model
  synchronize = torch.cuda.synchronize if device == 'cuda' else lambda: None

  def run():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(forward(images), labels)
    loss.backward()
    optimizer.step()
    synchronize()

  return run, sum(p.numel() for p in model.parameters())


def make_step(name: str, key: str, *, dtype: str):
  """Returns (run one step, info) of one variant key: ``jaxseg/<lowering>`` or a torch one."""
  if key.startswith('jaxseg/'):
    return make_jax_step(name, dtype=dtype, lowering=key.split('/', 1)[1])
  run, params = make_torch_step(name, key)
  _, _, size, batch, _, _ = CASES[name]
  return run, {'params': params, 'compile_s': float('nan'), 'size': size, 'batch': batch}


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


def variant_keys(variants: list, *, torch_: bool, torch_compile: bool) -> list:
  """The variants timed for one model: ``jaxseg/<lowering>`` each, then PyTorch's."""
  keys = [f'jaxseg/{lowering}' for lowering in variants]
  if torch_ and _torch_importable():
    keys += torch_variants(compile_=torch_compile)
  return keys


def _torch_importable() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import  # noqa: F401
  except ImportError:
    print('--torch: PyTorch does not import here; timing jaxseg only', flush=True)
    return False
  return True


# ---------------------------------------------------------------- one process per variant


def time_in_this_process(name: str, key: str, *, dtype: str, warmup: int, steps_: int) -> dict:
  """One variant's step built, warmed up and timed here: its info, median and memory costs.

  Returns the variant's info (``params``, ``compile_s``, ``size``, ``batch``) with
  ``step_s`` (median of ``steps_`` steps), ``faults`` (minor page faults a step) and
  ``system_ms`` (kernel time a step), the last two from ``getrusage`` around the timed steps.
  """
  run, info = make_step(name, key, dtype=dtype)
  for _ in range(warmup):
    run()
  before, times = resource.getrusage(resource.RUSAGE_SELF), []
  for _ in range(steps_):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  after = resource.getrusage(resource.RUSAGE_SELF)
  return dict(
    info,
    step_s=statistics.median(times),
    faults=(after.ru_minflt - before.ru_minflt) / steps_,
    system_ms=1e3 * (after.ru_stime - before.ru_stime) / steps_,
    device=_this_device(),
  )


def child_environment(malloc: str) -> dict:
  """The environment a variant's process runs in, for ``--malloc`` = binaries/default/huge.

  ``binaries``: as ``experiments.main`` would run here, malloc on transparent huge pages where
  ``experiments.huge_pages`` restarts the binaries with them (``$JAXSEG_HUGE_PAGES`` and a
  tunable of the user's own respected); ``default``: glibc's default allocator; ``huge``: the
  tunable set whatever the machine.
  """
  if malloc == 'binaries':  # the environment a binary started here would restart itself with
    return binaries_huge_pages.environment_with_huge_pages(os.environ) or dict(os.environ)
  if malloc not in ('default', 'huge'):
    raise ValueError(f'malloc must be binaries, default or huge, got {malloc!r}')
  tunables = [
    t
    for t in os.environ.get('GLIBC_TUNABLES', '').split(':')
    if t and not t.startswith(binaries_huge_pages.TUNABLE)
  ]
  env = {k: v for k, v in os.environ.items() if k != 'GLIBC_TUNABLES'}
  if malloc == 'huge':
    tunables.append(f'{binaries_huge_pages.TUNABLE}=1')
  if tunables:
    env['GLIBC_TUNABLES'] = ':'.join(tunables)
  return env


def time_in_own_process(
  name: str, key: str, *, dtype: str, warmup: int, steps_: int, malloc: str, quick: bool = False
) -> dict:
  """:func:`time_in_this_process` in a fresh Python process under ``--malloc=malloc``."""
  command = [
    sys.executable,
    os.path.abspath(__file__),
    f'--child={key}',
    f'--models={name}',
    f'--dtype={dtype}',
    f'--warmup={warmup}',
    f'--steps={steps_}',
    *(['--quick'] if quick else []),
  ]
  process = subprocess.run(
    command, env=child_environment(malloc), capture_output=True, text=True, check=False
  )
  if process.returncode != 0:
    raise RuntimeError(
      f'{name} {key}: the process timing it failed (exit {process.returncode}):\n'
      + process.stderr[-3000:]
    )
  return json.loads(process.stdout.strip().splitlines()[-1])


def bench_in_processes(
  name: str, keys: list, *, dtype: str, passes: int, warmup: int, steps_: int, malloc: str, quick
) -> dict:
  """{key: measurement} of one model, every variant in its own process, medians over passes."""
  measured = {key: [] for key in keys}
  for _ in range(passes):
    for key in keys:
      measured[key].append(
        time_in_own_process(
          name, key, dtype=dtype, warmup=warmup, steps_=steps_, malloc=malloc, quick=quick
        )
      )
  merged = {}
  for key, runs in measured.items():
    merged[key] = dict(runs[0])
    for field in ('step_s', 'faults', 'system_ms', 'compile_s'):
      merged[key][field] = statistics.median(r[field] for r in runs)
  return merged


# ---------------------------------------------------------------- all variants in this process


def bench_in_this_process(name: str, keys: list, *, dtype: str, warmup: int, steps_: int) -> dict:
  """{key: measurement} of one model, every variant here, timed in alternating rounds."""
  runs, info = {}, {}
  for key in keys:
    runs[key], info[key] = make_step(name, key, dtype=dtype)
  medians = time_alternating(runs, warmup=warmup, steps_=steps_)
  nan = float('nan')
  return {key: dict(info[key], step_s=medians[key], faults=nan, system_ms=nan) for key in keys}


def rows_of(name: str, measured: dict, *, dtype: str, isolation: str) -> list:
  """Table rows of one model: images/s and the ratio to the best PyTorch variant."""
  torch_best = min((m['step_s'] for k, m in measured.items() if k.startswith('torch')), default=0)
  rows = []
  for key, m in measured.items():
    row = {k: v for k, v in m.items() if k not in ('step_s', 'device')}
    row.update(
      model=name,
      variant=key,
      dtype=dtype,
      isolation=isolation,
      step_ms=1e3 * m['step_s'],
      images_per_s=m['batch'] / m['step_s'],
      vs_best_torch=torch_best / m['step_s'] if torch_best else float('nan'),
    )
    rows.append(row)
  return rows


def _parse(argv):
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
  parser.add_argument(
    '--isolation',
    default='process',
    choices=['process', 'shared'],
    help='process: every variant in a fresh process of its own (default); shared: all in this '
    'one, in alternating rounds',
  )
  parser.add_argument(
    '--passes', type=int, default=2, help='--isolation=process: alternating passes (median)'
  )
  parser.add_argument(
    '--malloc',
    default='binaries',
    choices=['binaries', 'default', 'huge'],
    help="--isolation=process: the variant processes' allocator; binaries (default): as "
    'experiments.main runs (huge pages where it restarts with them)',
  )
  parser.add_argument('--json', default='', help='also write the rows to this JSON file')
  parser.add_argument(
    '--quick', action='store_true', help='narrow models at 32x32, one step, no PyTorch: a smoke run'
  )
  parser.add_argument('--child', default='', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  for flag in ('warmup', 'steps', 'passes'):
    if getattr(args, flag) < (0 if flag == 'warmup' else 1):
      parser.error(f'--{flag}: expected a count >= {0 if flag == "warmup" else 1}')
  if args.quick:
    CASES.clear()
    CASES.update(QUICK_CASES)
    args.models = ','.join(m for m in args.models.split(',') if m in QUICK_CASES)
    args.warmup, args.steps, args.passes, args.torch = 0, 1, 1, False
  for name in args.models.split(','):
    if name not in CASES:
      parser.error(f'--models: unknown {name!r}; known: {", ".join(CASES)}')
  for lowering in args.variants.split(','):
    if lowering not in LOWERINGS:
      parser.error(f'--variants: unknown {lowering!r}; known: {", ".join(LOWERINGS)}')
  return args


def _print_row(r: dict) -> None:
  print(
    f'{r["model"]:<12} {r["variant"]:<15} {r["size"]:>4}x{r["size"]:<4} {r["batch"]:>5} '
    f'{r["params"]:>12,} {r["compile_s"]:>9.1f} {r["step_ms"]:>9.1f} '
    f'{r["images_per_s"]:>8.2f} {r["faults"]:>8.0f} {r["system_ms"]:>7.0f} '
    f'{r["vs_best_torch"]:>12.2f}',
    flush=True,
  )


def main(argv=None):
  args = _parse(argv)
  if args.child:
    measured = time_in_this_process(
      args.models, args.child, dtype=args.dtype, warmup=args.warmup, steps_=args.steps
    )
    print(json.dumps(measured))
    return [measured]
  in_processes = args.isolation == 'process'
  print(
    f'{args.isolation} isolation'
    + (f' ({args.passes} alternating passes, malloc {args.malloc})' if in_processes else '')
    + f', dtype {args.dtype}, median of {args.steps} steps after {args.warmup} warm-up, '
    f'jax {jax.__version__}, load {os.getloadavg()[0]:.1f}'
  )
  header = (
    f'{"model":<12} {"variant":<15} {"input":>9} {"batch":>5} {"params":>12} '
    f'{"compile s":>9} {"step ms":>9} {"img/s":>8} {"faults":>8} {"sys ms":>7} '
    f'{"/ best torch":>12}'
  )
  print(header)
  print('-' * len(header))
  rows, devices = [], set()
  keys = variant_keys(args.variants.split(','), torch_=args.torch, torch_compile=args.torch_compile)
  for name in args.models.split(','):
    if CASES[name][0] not in models.list_models():
      print(f'{name:<12} skipped: {CASES[name][0]!r} is not in the model registry yet')
      continue
    if in_processes:
      measured = bench_in_processes(
        name,
        keys,
        dtype=args.dtype,
        passes=args.passes,
        warmup=args.warmup,
        steps_=args.steps,
        malloc=args.malloc,
        quick=args.quick,
      )
    else:
      measured = bench_in_this_process(
        name, keys, dtype=args.dtype, warmup=args.warmup, steps_=args.steps
      )
    if in_processes:
      devices.update(m['device'] for m in measured.values())
    for row in rows_of(name, measured, dtype=args.dtype, isolation=args.isolation):
      rows.append(row)
      _print_row(row)
    if args.json:  # after every model: run_all.py's time limit can stop the run at any model
      _write_rows(rows, args.json)
  device = ', '.join(sorted(devices)) if in_processes else _this_device()
  print(f'device: {device}; load {os.getloadavg()[0]:.1f}')
  return rows


def _write_rows(rows, path) -> None:
  with open(f'{path}.partial', 'w') as f:
    json.dump(rows, f, indent=1)
  os.replace(f'{path}.partial', path)


def _this_device() -> str:
  return f'{jax.devices()[0].device_kind} x{jax.device_count()} ({jax.default_backend()})'


if __name__ == '__main__':
  main()
