r"""ResNet-50 train step on the CPU: jaxseg's convolution lowerings against PyTorch.

What is timed: one jitted train step of `jaxseg.models.resnet50` at 224x224, batch 8, float32
(forward in train mode with batch norm statistics, softmax cross-entropy, backward, SGD with
momentum 0.9 from optax, the state donated), and the same step of a PyTorch ResNet-50 v1.5
written inline (`channels_last`, `torch.set_num_threads` = the cores XLA uses). All steps are
compiled first, then run in alternating rounds (one step of each per round) so a shared
host's load hits them alike; the table gives the median step and its spread (min-max).

Variants of jaxseg's step differ only in how `jaxseg.ops.conv2d` lowers a convolution (the
benchmark swaps `jaxseg.ops.conv._conv2d_lowered` while tracing):

* `lax`: every convolution is `lax.conv_general_dilated` (a plain Flax model).
* `before`: 1x1 convolutions as matmuls, the rest XLA's: jaxseg before this benchmark, kept
  frozen here so later lowerings can be compared with it (today it equals `jaxseg`).
* `jaxseg`: `jaxseg.ops.conv2d` as shipped.

`--breakdown` times every distinct convolution of the network in isolation (forward plus the
gradients a train step needs: none for the image, so the stem only gets dW), per variant, and
multiplies by how often it occurs: where the step's time goes.

Variant names are `lowering[+options][@bf16]`: `+ynn-all` compiles with every YNNPACK fusion
type XLA:CPU offers (dot, eltwise, reduce, individual dot and convolution), `+ynn-off` with none
(XLA's own emitters: what "a plain Flax model" ran on before jaxlib sent convolutions and dots
to YNNPACK by default), `@bf16` computes in bfloat16 (float32 parameters).

Candidates, each with the expectation written down before measuring, then the outcome
(2-core shared host, load 2-5; per-pass numbers from `benchmarks/conv_ops.py --passes-only`):

1. 3x3 stride-1 backward as matmuls (dW as 9 shifted matmuls or one im2col matmul, dx as the
   flipped-kernel forward conv). Expected: dW from ~50 to ~150 GFLOP/s, 10-20% off the step.
   Outcome: XLA's own dW already runs at 100-150 GFLOP/s (jaxlib 0.10.2 hands convolutions to
   YNNPACK), its dx at 130-200; shifted dW ties at 14x14/7x7 and loses 1.3-3x at 56x56/28x28,
   im2col dW loses up to 3x. Dropped.
2. 3x3 forward as 9 accumulated shifted matmuls. Expected: tie (no patch copies, but 9 passes
   over the output). Outcome: 0.5-1.2x of XLA's; dropped.
3. Strided convolutions (3x3/2, the 7x7/2 stem) by space-to-depth + stride-1 conv; strided dx
   by jaxseg's stride-phase transposed conv. Expected: 1.3-2x on these four convs (~5% of the
   step). Outcome: s2d loses 2-6x in every pass (the 16/9 extra taps and the regrouping cost
   more than XLA's strided conv, 150-330 GFLOP/s); the phase dx loses 1.5x. Dropped; the
   stem's dW (~65 GFLOP/s) stays XLA's, its cost is ~1% of the step.
4. XLA:CPU options. Expected: oneDNN/XNNPACK worth up to 2x on convolutions. Outcome:
   YNNPACK is already on for convolutions and dots (turning it off costs 1.0-1.5x, 3 runs);
   enabling its eltwise/reduce fusions too changes nothing measurable; `xla_cpu_use_onednn`,
   `xla_cpu_use_xnnpack` and oneDNN fusion types change nothing in separate processes (noise
   +-30% there). jaxseg sets no flag.
5. BatchNorm (not in ops/): flax's train-mode BatchNorm+ReLU forward and backward at
   8x56x56x256 costs 44 ms against 14 ms for one read-modify-write of the same tensor, i.e.
   within ~1.3x of its memory traffic (it already uses the one-pass E[x^2]-E[x]^2); statistics
   as matmuls with a ones vector: 48 ms. No gain available there.
6. The max pool (not in ops/conv.py): XLA's select-and-scatter backward of the stem's 3x3/2
   pool at 8x112x112x64 takes ~150 ms (~6% of the step); 9 shifted maxima take 44 ms.
   Reported to the owner of ops/pooling.py (the gradient must still go to the first maximum).
7. bfloat16 compute (`@bf16`). Expected: no gain on a CPU. Outcome: 1.13-1.45x faster on
   this Zen 4 host (AVX512-BF16); a config choice, since it changes the numerics.

Run: `python benchmarks/resnet50_step.py [--rounds 5] [--breakdown] [--no-torch]
[--torch-threads 1,2] [--variants lax,before,jaxseg,jaxseg+ynn-all]`.
Results: benchmarks/README_conv.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from jaxseg.models.resnet import resnet50  # noqa: E402
from jaxseg.ops import conv as conv_lib  # noqa: E402

SHIPPED = conv_lib._conv2d_lowered


def _before(x, w, stride, pads, dilation, groups):
  if w.shape[:2] == (1, 1) and groups == 1:
    return conv_lib._pointwise_conv(x, w, stride, pads)
  return conv_lib._lax_conv(x, w, stride, pads, dilation, groups)


LOWERINGS = {'lax': conv_lib._lax_conv, 'before': _before, 'jaxseg': SHIPPED}

# XLA:CPU compile options (DebugOptions fields, set per executable so the variants run
# side by side in one process). jaxlib 0.10.2 sends convolutions and dots to YNNPACK by default.
_T = 'LIBRARY_FUSION_TYPE_'
COMPILER_OPTIONS = {
  '': {},
  'ynn-all': {
    'xla_cpu_experimental_ynn_fusion_type': ','.join(
      _T + t for t in ('DOT', 'ELTWISE', 'REDUCE', 'INDIVIDUAL_DOT', 'INDIVIDUAL_CONVOLUTION')
    )
  },
  'ynn-off': {'xla_cpu_experimental_ynn_fusion_type': ''},
}


def variant(name):
  """'lowering[+options][@bf16]' -> (lowering, compiler options, compute dtype)."""
  name, _, dtype = name.partition('@')
  lower_name, _, options = name.partition('+')
  dtype = {'': jnp.float32, 'bf16': jnp.bfloat16}[dtype]
  return LOWERINGS[lower_name], COMPILER_OPTIONS[options], dtype


@contextlib.contextmanager
def lowering(fn):
  """Routes jaxseg.ops.conv2d through `fn` while tracing inside the block."""
  saved = conv_lib._conv2d_lowered
  conv_lib._conv2d_lowered = fn
  try:
    yield
  finally:
    conv_lib._conv2d_lowered = saved


# ----------------------------------------------------------------------------- jaxseg step


def make_jax_step(batch, size, lower_fn, options=None, dtype=jnp.float32):
  """Returns (run one step, compile seconds, GFLOP of XLA's cost analysis)."""
  model = resnet50(num_classes=1000, dtype=dtype)
  tx = optax.sgd(0.1, momentum=0.9)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.standard_normal((batch, size, size, 3)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 1000, batch), jnp.int32)
  with lowering(lower_fn):
    variables = jax.jit(functools.partial(model.init, train=False))(jax.random.key(0), images)
  state = (variables['params'], variables['batch_stats'], tx.init(variables['params']))

  def step(state, images, labels):
    params, batch_stats, opt_state = state

    def loss_fn(params):
      (logits, _), updates = model.apply(
        {'params': params, 'batch_stats': batch_stats}, images, train=True, mutable=['batch_stats']
      )
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      return loss, updates['batch_stats']

    (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats, opt_state), loss

  start = time.perf_counter()
  with lowering(lower_fn):
    compiled = jax.jit(step, donate_argnums=0).lower(state, images, labels).compile(options or None)
  compile_s = time.perf_counter() - start
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  gflop = float(cost.get('flops', float('nan'))) / 1e9 if cost else float('nan')
  holder = {'state': state}

  def run():
    holder['state'], loss = compiled(holder['state'], images, labels)
    jax.block_until_ready(loss)

  return run, compile_s, gflop


# ----------------------------------------------------------------------------- torch step


def make_torch_step(batch, size, threads):
  """The same step in PyTorch (torch_models.resnet50: torchvision's v1.5), channels_last."""
  import torch
  from torch import nn

  import torch_models  # benchmarks/torch_models.py (this folder is on sys.path)

  torch.set_num_threads(threads)
  torch.manual_seed(0)
  net = torch_models.resnet50(torch).to(memory_format=torch.channels_last)
  params = sum(p.numel() for p in net.parameters())
  assert params == 25_557_032, params  # torchvision's resnet50: the same network as jaxseg's
  optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
  images = torch.randn(batch, 3, size, size).to(memory_format=torch.channels_last)
  labels = torch.randint(0, 1000, (batch,))

  def run():
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(net(images), labels)
    loss.backward()
    optimizer.step()

  return run


# ----------------------------------------------------------------------------- breakdown


def conv_inventory(batch, size):
  """Every conv2d call of ResNet-50 as (x shape, w shape, stride, pads, dilation, groups) -> n."""
  calls = collections.Counter()

  def record(x, w, stride, pads, dilation, groups):
    calls[(x.shape, w.shape, stride, tuple(map(tuple, pads)), dilation, groups)] += 1
    return SHIPPED(x, w, stride, pads, dilation, groups)

  model = resnet50(num_classes=1000)
  with lowering(record):
    jax.eval_shape(
      functools.partial(model.init, train=False),
      jax.random.key(0),
      jax.ShapeDtypeStruct((batch, size, size, 3), jnp.float32),
    )
  return calls


def conv_step(name, config, rng):
  """Compiled forward + train-step gradients of one convolution, and its arguments."""
  lower_fn, options, _ = variant(name)
  x_shape, w_shape, stride, pads, dilation, groups = config
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal(w_shape) * 0.05, jnp.float32)
  argnums = (1,) if x_shape[-1] == 3 else (0, 1)  # the image needs no gradient
  y = conv_lib._lax_conv(x, w, stride, pads, dilation, groups)
  dy = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)

  def loss(x, w):
    return jnp.vdot(lower_fn(x, w, stride, pads, dilation, groups), dy)

  fn = jax.jit(jax.grad(loss, argnums=argnums)).lower(x, w).compile(options or None)
  return fn, (x, w), 2 * y.size * w_shape[0] * w_shape[1] * w_shape[2]


def breakdown(batch, size, names, rounds):
  calls = conv_inventory(batch, size)
  rng = np.random.default_rng(0)
  print(
    f'\nconvolutions of the step, forward + gradients, best ms of {rounds} '
    "(GFLOP/s counts 3x the forward's multiply-adds, 2x for the stem)"
  )
  print(f'{"x -> w, stride":44s}{"n":>3s}' + ''.join(f'{n:>16s}' for n in names))
  totals = collections.Counter()
  for config, count in sorted(calls.items(), key=lambda kv: -kv[0][0][1]):
    x_shape, w_shape, stride = config[:3]
    label = (
      f'{x_shape[1]}x{x_shape[2]}x{x_shape[3]} {w_shape[0]}x{w_shape[1]}->{w_shape[3]} /{stride[0]}'
    )
    fns = {n: conv_step(n, config, rng) for n in names}
    times = {n: [] for n in names}
    for n, (fn, args, _) in fns.items():
      jax.block_until_ready(fn(*args))
    for _ in range(rounds):
      for n, (fn, args, _) in fns.items():
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times[n].append(time.perf_counter() - start)
    row = f'{label:44s}{count:3d}'
    for n in names:
      t = min(times[n])  # the least-disturbed run: one shape is short, the host shared
      passes = 2 if x_shape[-1] == 3 else 3
      flops = passes * fns[n][2]
      totals[n] += count * t
      row += f'{1e3 * t:8.1f} ({flops / t / 1e9:4.0f})'
    print(row, flush=True)
  print(f'{"total over the step":47s}' + ''.join(f'{1e3 * totals[n]:16.0f}' for n in names))


# ----------------------------------------------------------------------------- main


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--size', type=int, default=224)
  parser.add_argument('--rounds', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--variants', default='lax,before,jaxseg')
  parser.add_argument(
    '--torch-threads',
    default='',
    help='comma-separated thread counts for PyTorch (default: the cores)',
  )
  parser.add_argument('--no-torch', action='store_true')
  parser.add_argument('--breakdown', action='store_true')
  parser.add_argument('--no-step', action='store_true', help='only the breakdown')
  args = parser.parse_args()
  names = args.variants.split(',')
  threads = len(os.sched_getaffinity(0))
  print(
    f'jax {jax.__version__} ({jax.devices()[0].platform}), {threads} cores, '
    f'batch {args.batch}, {args.size}x{args.size}, float32, load {os.getloadavg()[0]:.1f}'
  )
  if not args.no_step:
    steps, compile_s, gflop = {}, {}, {}
    for name in names:
      steps[name], compile_s[name], gflop[name] = make_jax_step(
        args.batch, args.size, *variant(name)
      )
    try:
      if args.no_torch:
        raise ImportError
      for count in map(int, (args.torch_threads or str(threads)).split(',')):
        name = f'torch/{count}'  # PyTorch with `count` threads (XLA uses all the cores)
        steps[name] = make_torch_step(args.batch, args.size, count)
        compile_s[name], gflop[name] = 0.0, float('nan')
    except ImportError:
      pass
    for _ in range(args.warmup):
      for run in steps.values():
        run()
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    for _ in range(args.rounds):
      for name, run in steps.items():
        start, cpu_start = time.perf_counter(), time.process_time()
        run()
        times[name].append(time.perf_counter() - start)
        cpu_times[name].append(time.process_time() - cpu_start)
    # CPU s/step (all threads) is the work done, which a loaded host inflates far less than
    # the wall time: on an idle host a step takes about cpu / threads used.
    print(
      f'\n{"step":18s}{"img/s":>8s}{"ms/step":>10s}{"min-max ms":>16s}{"CPU s/step":>11s}'
      f'{"compile s":>11s}{"XLA GFLOP":>11s}'
    )
    for name, ts in times.items():
      median = statistics.median(ts)
      print(
        f'{name:18s}{args.batch / median:8.2f}{1e3 * median:10.0f}'
        f'{1e3 * min(ts):8.0f}-{1e3 * max(ts):<7.0f}{statistics.median(cpu_times[name]):11.2f}'
        f'{compile_s[name]:11.1f}{gflop[name]:11.1f}',
        flush=True,
      )
      print(f'{"":18s}rounds ms: {" ".join(f"{1e3 * t:.0f}" for t in ts)}')
    print(f'load {os.getloadavg()[0]:.1f}')
  if args.breakdown:
    breakdown(args.batch, args.size, names, args.rounds)


if __name__ == '__main__':
  main()
