r"""Throughput of the convolutions jaxseg trains (ResNet-50, FCN upsampling) per lowering.

Why: a Flax ResNet-50 train step on XLA:CPU ran at 4.6 img/s against PyTorch's 12 img/s. XLA's
matmul reaches ~500 GFLOP/s on that machine but its 1x1-convolution backward at 56x56 only ~50.
A 1x1 convolution *is* a matmul over channels, and so are both of its gradients, so lowering it
to `einsum` should let XLA use its fast dot emitter in all three passes.

Lowerings compared (all NHWC / HWIO, float32, `jax.jit`):

* `lax`: `lax.conv_general_dilated`, XLA's convolution.
* `einsum` (1x1 only): pad, stride by slicing, then `einsum('nhwc,co->nhwo')`; its VJP is two
  matmuls (`dy @ w.T` scattered back by the slice, and `x.T @ dy`).
* `im2col` (k x k): gather the k*k shifted (strided) views into `(N, Ho, Wo, k*k*C)` and do one
  matmul with the kernel reshaped `(k*k*C, O)`; the backward is two matmuls plus a scatter-add.
* `jaxseg`: `jaxseg.ops.conv2d` as shipped (which routes 1x1, groups=1 to `einsum`).

Expectations written down before measuring:

* 1x1 forward: no change (XLA already emits a 1x1 forward convolution as a GEMM).
* 1x1 forward+backward: 3-5x faster with `einsum`, the backward moving from the convolution
  emitter (~50 GFLOP/s) to the dot emitter (hundreds of GFLOP/s on a many-core host).
* 1x1 stride 2: the same gain; the strided slice costs one copy of a quarter of the input.
* 3x3 64->64: `lax` wins or ties; im2col copies the input 9 times.
* 7x7 stem (3 input channels): im2col might win, the convolution emitter vectorises badly over
  3 channels, but the 49x copy of a 224x224 image is large: expect within 2x either way.

Measured (2-core CPU container shared with other jobs, load ~6, jax 0.10.2, batch 8, best of
7; absolute numbers are noisy, compare within a row. GFLOP/s counts the forward's
2*N*Ho*Wo*O*k*k*C, and 3x that for forward+backward; "forward | forward+backward"):

  convolution                       lax             einsum            im2col
  1x1 56x56 256->64            52 |  40         159 | 123         181 | 152
  1x1 56x56 64->256           199 |  41         361 | 138         364 | 124
  1x1/2 56x56 256->512        158 |  45         237 | 123         239 | 121
  3x3 56x56 64->64            133 | 198           -                17 |  44
  7x7/2 224x224 3->64 (stem)  158 |  31           -                12 |  24

Outcome: the 1x1 prediction held for forward+backward (3x, ~40 -> ~125 GFLOP/s) and the
forward gained too (up to 3x at 256->64, where XLA's convolution emitter is slowest).
im2col loses on 3x3 (4x slower) and on the stem (forward 13x slower; forward+backward ~1.3x
slower), so `jaxseg.ops.conv2d` lowers only 1x1, groups=1 convolutions to `einsum` and
leaves every other shape to `lax.conv_general_dilated`. (`im2col` with k=1 *is* the einsum.)
The stem's forward+backward (31 GFLOP/s) stays slow under both lowerings tried.

Transposed convolutions (FCN's upsampling: 21 classes, kernel 2f, stride f; the saliency net's
and FCN's learned 2x):

* `lax`: XLA's formulation, a convolution of the input dilated by stride - 1 zeros per pixel
  with the flipped kernel (what `jax.lax.conv_transpose` does).
* `jaxseg`: `jaxseg.ops.conv_transpose2d`, which for stride > 1 (dilation 1) computes the value
  as one stride-1 convolution over the *undilated* input with the s*s phases of the kernel as
  output channels, then depth-to-space; the input gradient as XLA's strided convolution, and the
  kernel gradient as ceil(k/s)^2 matmuls (a custom JVP picks each formulation).

Expected before measuring: the dilated formulation multiplies (1 - 1/s^2) zeros, so the forward
should gain up to s^2 (hundreds of times for s=32, capped by the dense conv's own speed: expect
10-100x); the input gradient unchanged (already a strided convolution). Found while measuring:
XLA's kernel gradient of either formulation runs at a few GFLOP/s, hence the matmul blocks.

  Measured (same host, load ~10, best of 5; GFLOP/s of useful multiply-adds):

  transposed convolution              lax               jaxseg
  FCN-32s x32, 16x16x21           0.5 |   5.6       102 |  28
  FCN-8s x8, 64x64x21             5.8 |   2.2        58 |  32
  FCN x2, 32x32x21                 57 |   2.5        68 |  88
  x2, 4x32x32x64                   66 |   2.0       186 | 289

  The forward gained 200x (x32) and 10x (x8) as predicted; forward+backward gained 5-140x,
  almost all from the kernel gradient. In the first table, rows where lax and jaxseg run the
  same code (3x3, stem) show how noisy this shared host is (up to 2x).

Per pass (`--passes-only`): ResNet-50's k x k convolutions, forward, input gradient (dx) and
kernel gradient (dw) each timed alone, XLA's against the matmul formulations proposed for
closing the gap to PyTorch (benchmarks/resnet50_step.py gives the expectations and the step):
`shifted` (k*k accumulated matmuls of shifted views, no patch matrix), `patches` (dw as one
im2col matmul), `s2d` (a strided conv as a stride-1 conv of the space-to-depth input) and
`phases` (a strided conv's dx as jaxseg's stride-phase transposed convolution).

  Measured (same host, load ~4, batch 8, median of 7; GFLOP/s of the forward's multiply-adds):

  convolution          fwd lax  fwd alt      dw lax  dw alt  dw patches   dx lax  dx phases
  3x3 56x56 64           111   42 shifted      98     32        25         130       -
  3x3 28x28 128          140  116 shifted     124     98        48         196       -
  3x3 14x14 256          235  160 shifted     143    135       129         179       -
  3x3 7x7 512            156  184 shifted     150    148       148         119       -
  3x3/2 56x56 128        279   46 s2d         136     34         -         214     216
  3x3/2 28x28 256        329  129 s2d         201     72         -         290     200
  3x3/2 14x14 512        264   95 s2d         254     99         -         221     140
  7x7/2 stem             236   39 s2d          65     29         -           -       -

XLA's convolution (which jaxlib 0.10.2 hands to YNNPACK) wins or ties every pass, so none of
these formulations is used; `jaxseg.ops.conv2d` keeps XLA's convolution for every k x k shape.

Run: `python benchmarks/conv_ops.py [--batch 8] [--repeats 5] [--passes-only]` (from the
repository root).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))
from jaxseg import ops  # noqa: E402

# name, (H, W, C_in), (k, C_out), stride, padding
CONVS = [
  ('1x1 56x56 256->64', (56, 56, 256), (1, 64), 1, 0),
  ('1x1 56x56 64->256', (56, 56, 64), (1, 256), 1, 0),
  ('1x1/2 56x56 256->512', (56, 56, 256), (1, 512), 2, 0),
  ('3x3 56x56 64->64', (56, 56, 64), (3, 64), 1, 1),
  ('7x7/2 224x224 3->64 (stem)', (224, 224, 3), (7, 64), 2, 3),
]


def lax_conv(x, w, stride, padding):
  return lax.conv_general_dilated(
    x, w, (stride, stride), [(padding, padding)] * 2, dimension_numbers=('NHWC', 'HWIO', 'NHWC')
  )


def einsum_conv(x, w, stride, padding):
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  return jnp.einsum('nhwc,co->nhwo', x[:, ::stride, ::stride], w[0, 0])


def im2col_conv(x, w, stride, padding):
  k = w.shape[0]
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  views = [
    x[:, u : u + stride * (out_h - 1) + 1 : stride, v : v + stride * (out_w - 1) + 1 : stride]
    for u in range(k)
    for v in range(k)
  ]
  patches = jnp.concatenate(views, axis=-1)  # (N, Ho, Wo, k*k*C), (u, v, c) order = HWIO rows
  return jnp.einsum('nhwp,po->nhwo', patches, w.reshape(-1, w.shape[-1]))


def jaxseg_conv(x, w, stride, padding):
  return ops.conv2d(x, w, stride=stride, padding=padding)


LOWERINGS = {'lax': lax_conv, 'einsum': einsum_conv, 'im2col': im2col_conv, 'jaxseg': jaxseg_conv}


def _time(fn, args, repeats):
  jax.block_until_ready(fn(*args))  # compile
  jax.block_until_ready(fn(*args))  # warm
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)  # the least-disturbed run: the host is shared


def measure(conv, x, w, dy, stride, padding, repeats):
  forward = jax.jit(lambda x_, w_: conv(x_, w_, stride, padding))
  both = jax.jit(
    jax.grad(lambda x_, w_: jnp.vdot(conv(x_, w_, stride, padding), dy), argnums=(0, 1))
  )
  return _time(forward, (x, w), repeats), _time(both, (x, w), repeats)


# name, (N, H, W, C), kernel, stride, padding; C_out = C.
TRANSPOSED = [
  ('FCN-32s x32, 16x16x21', (1, 16, 16, 21), 64, 32, 16),
  ('FCN-8s x8, 64x64x21', (1, 64, 64, 21), 16, 8, 4),
  ('FCN x2, 32x32x21', (1, 32, 32, 21), 4, 2, 1),
  ('x2, 4x32x32x64', (4, 32, 32, 64), 4, 2, 1),
]


def lax_transpose(x, w, stride, padding):
  k = w.shape[0]
  return lax.conv_general_dilated(
    x,
    w[::-1, ::-1],
    (1, 1),
    [(k - 1 - padding,) * 2] * 2,
    lhs_dilation=(stride, stride),
    dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
  )


def jaxseg_transpose(x, w, stride, padding):
  return ops.conv_transpose2d(x, w, stride=stride, padding=padding)


def transposed_table(repeats, rng):
  print(f'\n{"transposed convolution":28s}{"lax":>20s}{"jaxseg":>20s}')
  for name, shape, k, stride, padding in TRANSPOSED:
    x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, shape[-1], shape[-1])) * 0.05, jnp.float32)
    reference = lax_transpose(x, w, stride, padding)
    dy = jnp.asarray(rng.standard_normal(reference.shape), jnp.float32)
    flops = 2 * x.size * k * k * shape[-1]  # useful multiply-adds: every input meets k*k taps
    row = f'{name:28s}'
    for conv in (lax_transpose, jaxseg_transpose):
      error = float(
        jnp.abs(conv(x, w, stride, padding) - reference).max() / jnp.abs(reference).max()
      )
      assert error < 1e-5, (name, conv.__name__, error)
      t_fwd, t_both = measure(conv, x, w, dy, stride, padding, repeats)
      row += f'{flops / t_fwd / 1e9:9.1f} |{3 * flops / t_both / 1e9:8.1f} '
    print(row, flush=True)


# ---------------------------------------------------------------- per pass: fwd, dx, dw
# Formulations tried against XLA's for the k x k convolutions of ResNet-50 (each pass timed on
# its own; all checked equal to lax's value or VJP before timing).


def shifted_conv(x, w, stride, padding):
  """k*k matmuls of shifted (strided) views accumulated: no patch matrix is materialised."""
  k = w.shape[0]
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  out_h = (x.shape[1] - k) // stride + 1
  out_w = (x.shape[2] - k) // stride + 1
  y = 0
  for u in range(k):
    for v in range(k):
      view = x[
        :, u : u + stride * (out_h - 1) + 1 : stride, v : v + stride * (out_w - 1) + 1 : stride
      ]
      y = y + jnp.einsum('nhwc,co->nhwo', view, w[u, v])
  return y


def space_to_depth_conv(x, w, stride, padding):
  """A strided conv as a stride-1 conv of the space-to-depth input (s*s*C channels, kernel
  zero-padded to m*s taps, m = ceil(k / s), and regrouped to (m, m, s*s*C, O))."""
  k, s = w.shape[0], stride
  m = -(-k // s)
  n, height, width, c = x.shape
  out_h = (height + 2 * padding - k) // s + 1
  out_w = (width + 2 * padding - k) // s + 1
  zh, zw = out_h + m - 1, out_w + m - 1
  x = jnp.pad(
    x, ((0, 0), (padding, zh * s - height - padding), (padding, zw * s - width - padding), (0, 0))
  )
  z = x.reshape(n, zh, s, zw, s, c).transpose(0, 1, 3, 2, 4, 5).reshape(n, zh, zw, s * s * c)
  blocks = jnp.pad(w, ((0, m * s - k), (0, m * s - k), (0, 0), (0, 0)))
  blocks = blocks.reshape(m, s, m, s, c, -1).transpose(0, 2, 1, 3, 4, 5)
  return lax_conv(z, blocks.reshape(m, m, s * s * c, -1), 1, 0)


def dw_by_patches(x, dy, k, stride, padding):
  """The kernel gradient as one matmul: im2col(x)^T (N*Ho*Wo, k*k*C) times dy."""
  x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
  out_h, out_w = dy.shape[1:3]
  views = [
    x[:, u : u + stride * (out_h - 1) + 1 : stride, v : v + stride * (out_w - 1) + 1 : stride]
    for u in range(k)
    for v in range(k)
  ]
  patches = jnp.concatenate(views, -1).reshape(-1, k * k * x.shape[-1])
  return (patches.T @ dy.reshape(-1, dy.shape[-1])).reshape(k, k, x.shape[-1], -1)


def dx_by_phases(dy, w, stride, padding, input_hw):
  """The input gradient as jaxseg's stride-phase transposed convolution of dy."""
  from jaxseg.ops import conv as conv_lib  # the private fast path, measured in isolation

  pads = ((padding, padding), (padding, padding))
  return conv_lib._transpose_by_phases(
    dy, jnp.transpose(w, (0, 1, 3, 2)), (stride, stride), pads, input_hw
  )


# name, (H, W, C_in), (k, C_out), stride, padding: ResNet-50's k x k convolutions at batch 8
PASS_CONVS = [
  ('3x3 56x56 64', (56, 56, 64), (3, 64), 1, 1),
  ('3x3 28x28 128', (28, 28, 128), (3, 128), 1, 1),
  ('3x3 14x14 256', (14, 14, 256), (3, 256), 1, 1),
  ('3x3 7x7 512', (7, 7, 512), (3, 512), 1, 1),
  ('3x3/2 56x56 128', (56, 56, 128), (3, 128), 2, 1),
  ('3x3/2 28x28 256', (28, 28, 256), (3, 256), 2, 1),
  ('3x3/2 14x14 512', (14, 14, 512), (3, 512), 2, 1),
  ('7x7/2 224x224 3 (stem)', (224, 224, 3), (7, 64), 2, 3),
]


def passes_table(batch, repeats, rng):
  print(f"\nper pass, GFLOP/s of the forward's multiply-adds (best of {repeats})")
  for name, (height, width, c_in), (k, c_out), stride, padding in PASS_CONVS:
    x = jnp.asarray(rng.standard_normal((batch, height, width, c_in)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, c_in, c_out)) * 0.05, jnp.float32)
    y, vjp = jax.vjp(lambda x_, w_: lax_conv(x_, w_, stride, padding), x, w)
    dy = jnp.asarray(rng.standard_normal(y.shape), jnp.float32)
    dx_ref, dw_ref = vjp(dy)
    flops = 2 * y.size * k * k * c_in
    alt = space_to_depth_conv if stride > 1 else shifted_conv
    alt_name = 's2d' if stride > 1 else 'shifted'
    candidates = {
      'fwd lax': (lambda x_, w_, dy_: lax_conv(x_, w_, stride, padding), y),
      f'fwd {alt_name}': (lambda x_, w_, dy_: alt(x_, w_, stride, padding), y),
      'dw lax': (
        lambda x_, w_, dy_: jax.vjp(lambda v: lax_conv(x_, v, stride, padding), w_)[1](dy_)[0],
        dw_ref,
      ),
      f'dw {alt_name}': (
        lambda x_, w_, dy_: jax.vjp(lambda v: alt(x_, v, stride, padding), w_)[1](dy_)[0],
        dw_ref,
      ),
      'dw patches': (lambda x_, w_, dy_: dw_by_patches(x_, dy_, k, stride, padding), dw_ref),
    }
    if c_in != 3:  # the stem's input (the image) needs no gradient
      candidates['dx lax'] = (
        lambda x_, w_, dy_: jax.vjp(lambda u: lax_conv(u, w_, stride, padding), x_)[1](dy_)[0],
        dx_ref,
      )
      if stride > 1:
        candidates['dx phases'] = (
          lambda x_, w_, dy_: dx_by_phases(dy_, w_, stride, padding, (height, width)),
          dx_ref,
        )
    row = f'{name:24s}'
    for label, (fn, expected) in candidates.items():
      fn = jax.jit(fn)
      got = fn(x, w, dy)
      error = float(jnp.abs(got - expected).max() / jnp.abs(expected).max())
      assert error < 1e-4, (name, label, error)  # every formulation computes the same pass
      row += f'  {label} {flops / _time(fn, (x, w, dy), repeats) / 1e9:4.0f}'
    print(row, flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=8)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument(
    '--passes-only', action='store_true', help='only the per-pass table of the k x k convolutions'
  )
  args = parser.parse_args()
  rng = np.random.default_rng(0)
  if args.passes_only:
    passes_table(args.batch, args.repeats, rng)
    return
  print(
    f'jax {jax.__version__} on {jax.devices()[0].platform}, batch {args.batch}; '
    'GFLOP/s forward | forward+backward'
  )
  header = f'{"convolution":28s}' + ''.join(f'{name:>20s}' for name in LOWERINGS)
  print(header)
  for name, (height, width, c_in), (k, c_out), stride, padding in CONVS:
    x = jnp.asarray(rng.standard_normal((args.batch, height, width, c_in)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((k, k, c_in, c_out)) * 0.05, jnp.float32)
    reference = lax_conv(x, w, stride, padding)
    dy = jnp.asarray(rng.standard_normal(reference.shape), jnp.float32)
    flops = 2 * reference.size * k * k * c_in
    row = f'{name:28s}'
    for lowering, conv in LOWERINGS.items():
      if lowering == 'einsum' and k != 1:
        row += f'{"-":>20s}'
        continue
      error = float(
        jnp.abs(conv(x, w, stride, padding) - reference).max() / jnp.abs(reference).max()
      )
      assert error < 1e-5, (name, lowering, error)  # every lowering computes the same conv
      t_fwd, t_both = measure(conv, x, w, dy, stride, padding, args.repeats)
      row += f'{flops / t_fwd / 1e9:9.1f} |{3 * flops / t_both / 1e9:8.1f} '
    print(row, flush=True)
  transposed_table(args.repeats, rng)
  passes_table(args.batch, args.repeats, rng)


if __name__ == '__main__':
  main()
