// conv2d on NCHW activations and [Cout, Cin, KH, KW] weights (conv2d.wgsl): forward with the
// bias fused, input gradient through the same kernel (transposed, flipped weights), weight
// gradient as split-K partial sums reduced by reduce.wgsl, bias gradient as per-channel sums.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor.js';
import { fmt } from '../shape.js';
import { defineOp } from './define.js';
import { float } from './checks.js';
import { fillKernel, packParams, reduceRowsKernel, stridedCopy } from './launch.js';
import { checkNCHW, windowGeometry, type Padding, type Pair, type Window } from './window.js';
import { slice } from './movement.js';
import { channelSums } from './norm.js';

export interface Conv2dOptions { stride?: Pair; padding?: Padding }

interface Geometry extends Window { N: number; Cin: number; H: number; W: number; Cout: number; KH: number; KW: number }

function geometry(x: Tensor, w: Tensor, b: Tensor | undefined, o: Conv2dOptions): Geometry {
  float(x, 'conv2d', 'input'); float(w, 'conv2d', 'weight');
  checkNCHW(x, 'conv2d');
  if (w.rank !== 4) throw new Error(`medgrad: conv2d: weight must be [Cout, Cin, KH, KW], got shape ${fmt(w.shape)}`);
  const [N, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, wc, KH, KW] = w.shape as [number, number, number, number];
  if (wc !== Cin) throw new Error(`medgrad: conv2d: input ${fmt(x.shape)} has ${Cin} channels but weight ${fmt(w.shape)} expects ${wc}`);
  if (b !== undefined && (float(b, 'conv2d', 'bias').rank !== 1 || b.shape[0] !== Cout)) {
    throw new Error(`medgrad: conv2d: bias of shape ${fmt(b.shape)} does not match ${Cout} output channels`);
  }
  return { N, Cin, H, W, Cout, KH, KW, ...windowGeometry(x.shape, KH, KW, o.stride ?? 1, o.padding ?? 'valid', 'conv2d') };
}

/** Weight strides (co, ci, kh, kw) and offset as conv_fwd reads them; defaults: [Cout, Cin, KH, KW] contiguous. */
type WeightLayout = [number, number, number, number, number];
const plainLayout = (g: Geometry): WeightLayout => [g.Cin * g.KH * g.KW, g.KH * g.KW, g.KW, 1, 0];

function params(g: Geometry, hasBias: boolean, splits = 1, perSplit = 0, wl: WeightLayout = plainLayout(g)): ArrayBuffer {
  return packParams([g.N, g.Cin, g.H, g.W, g.Cout, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, hasBias ? 1 : 0, splits, perSplit, ...wl, 0, 0, 0]);
}

const flopsOf = (g: Geometry) => 2 * g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW;
const desc = (g: Geometry) => `[${g.N}, ${g.Cin}, ${g.H}, ${g.W}] * [${g.Cout}, ${g.Cin}, ${g.KH}, ${g.KW}] s${g.sh}x${g.sw} p${g.pt},${g.pb},${g.pl},${g.pr}`;

/** Channel block of conv_fwd: 16, or 8 or 4 for layers with few output channels. */
const channelBlock = (c: number) => (c <= 4 ? 4 : c <= 8 ? 8 : 16);

function forward(x: Tensor, w: Tensor, b: Tensor | undefined, g: Geometry, wl = plainLayout(g), op = 'conv2d'): Tensor {
  const y = empty([g.N, g.Cout, g.OH, g.OW]);
  const rt = runtime();
  const rb = channelBlock(g.Cout);
  const blocks = g.N * g.OH * Math.ceil(g.OW / 8);
  if (blocks / 16 > 65535) throw new Error(`medgrad: ${op}: ${desc(g)} has too many output rows for one dispatch; split the batch`);
  rt.dispatch(rt.kernel('conv2d', 'conv_fwd', { RB: rb }), {
    op, label: `${op} ${desc(g)}`, params: params(g, b !== undefined, 1, 0, wl),
    buffers: { x: x.buffer, w: w.buffer, bias: (b ?? w).buffer, y: y.buffer },
    workgroups: [Math.ceil(blocks / 16), Math.ceil(g.Cout / rb / 4)],
    flops: flopsOf(g), bytes: 4 * (x.size + w.size + y.size),
  });
  return y;
}

/**
 * dx is the stride-1 convolution of dy (with a stride s, spread out by s - 1 zeros between
 * values) with the kernel transposed (Cin <-> Cout) and flipped, padded by K - 1 - p. The
 * forward kernel reads that weight layout through strides; padding wider than the kernel
 * becomes a crop of the spread dy. One kernel serves forward and input gradient alike.
 */
function inputGrad(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const khw = g.KH * g.KW;
  const Hd = (g.OH - 1) * g.sh + 1, Wd = (g.OW - 1) * g.sw + 1;
  const ct = Math.max(0, g.pt - (g.KH - 1)), cl = Math.max(0, g.pl - (g.KW - 1));
  if (ct >= Hd || cl >= Wd) return fillKernel(empty([g.N, g.Cin, g.H, g.W]), 0);
  return tidy(() => {
    let src = g.sh > 1 || g.sw > 1 ? spreadOut(dy, g, Hd, Wd) : dy;
    if (ct || cl) src = slice(src, [0, 0, ct, cl]);
    const t: Geometry = {
      ...g, Cin: g.Cout, Cout: g.Cin, H: Hd - ct, W: Wd - cl, OH: g.H, OW: g.W, sh: 1, sw: 1,
      pt: g.KH - 1 - g.pt + ct, pb: 0, pl: g.KW - 1 - g.pl + cl, pr: 0,
    };
    return forward(src, w, undefined, t, [khw, g.Cin * khw, -g.KW, -1, khw - 1], 'conv2d.dx');
  });
}

function weightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const K = g.Cin * g.KH * g.KW;
  const P = g.N * g.OH * g.OW;
  // Split the pixel reduction so that there are enough independent sums to fill the device,
  // while each still covers enough pixels to amortise the final reduction.
  const blocks = Math.ceil(K / 8) * Math.ceil(g.Cout / 16);
  const splits = Math.max(1, Math.min(Math.ceil(P / 256), Math.ceil(4096 / blocks)));
  const perSplit = Math.ceil(P / splits);
  const rt = runtime();
  return tidy(() => {
    const partial = empty([g.Cout * K, splits]);
    rt.dispatch(rt.kernel('conv2d', 'conv_bwd_weight'), {
      op: 'conv2d.dw', label: `conv2d.dw ${desc(g)} (${splits} splits)`, params: params(g, false, splits, perSplit),
      buffers: { dy: dy.buffer, x: x.buffer, dw: partial.buffer },
      workgroups: [Math.ceil(K / 8 / 8), Math.ceil(g.Cout / 16 / 8), splits],
      flops: flopsOf(g), bytes: 4 * (dy.size + x.size + partial.size),
    });
    return reduceRowsKernel(partial, g.Cout * K, splits, 'sum', [g.Cout, g.Cin, g.KH, g.KW]);
  });
}

/** dy [N, Cout, OH, OW] with (stride - 1) zeros between neighbours: [N, Cout, Hd, Wd]. */
function spreadOut(dy: Tensor, g: Geometry, Hd: number, Wd: number): Tensor {
  const out = fillKernel(empty([g.N, g.Cout, Hd, Wd]), 0);
  stridedCopy(dy, out, dy.shape, dy.strides, 0, [g.Cout * Hd * Wd, Hd * Wd, g.sh * Wd, g.sw], 0, 'conv2d.spread');
  return out;
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch and Keras) of x [N, Cin, H, W] with
 * w [Cout, Cin, KH, KW], optional bias [Cout]; stride and padding as in Conv2dOptions.
 */
export const conv2d: (x: Tensor, w: Tensor, b?: Tensor, options?: Conv2dOptions) => Tensor = defineOp('conv2d',
  (x: Tensor, w: Tensor, b?: Tensor, options: Conv2dOptions = {}) => forward(x, w, b, geometry(x, w, b, options)),
  (gy, _y, x, w, b, options = {}) => {
    const g = geometry(x, w, b, options);
    // An image batch (the first layer's input) usually needs no gradient: skip that kernel.
    return [x.requiresGrad ? inputGrad(gy, w, g) : null, w.requiresGrad ? weightGrad(gy, x, g) : null, b?.requiresGrad ? channelSums(gy) : null];
  });

/** Output height and width of conv2d for an input shape, without running it. */
export function conv2dOutputSize(inShape: readonly number[], kernel: readonly [number, number], options: Conv2dOptions = {}): [number, number] {
  const g = windowGeometry(inShape, kernel[0], kernel[1], options.stride ?? 1, options.padding ?? 'valid', 'conv2d');
  return [g.OH, g.OW];
}
