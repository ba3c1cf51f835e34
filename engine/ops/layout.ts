// The channel-blocked layout NCHW[c/4]HW4 (an experiment of issue 13, measured by
// bench/layout.ts): a tensor [N, C, H, W] is held as [N, ceil(C/4), H, W, 4], a pixel's four
// channels contiguous (one vec4 load) and the lanes of channels >= C zero. Conversions in both
// directions (each the other's gradient), weights pre-arranged for the blocked convolution, and
// the forward of a direct convolution and of training-mode batch norm + ReLU in that layout.
// The convolution and batch norm here have no backward: they refuse inputs that need gradients.
import { isGradEnabled } from '../autograd/mode.js';
import { Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { GRAD, EXACT, type Rng } from '../reference/check.js';
import * as R from '../reference/float64.js';
import * as B from '../reference/layout.js';
import { op } from './record.js';
import { float } from './checks.js';
import { checkNCHW, windowGeometry, type Padding, type Pair } from './window.js';
import { blockedBatchNormKernel, blockedConvKernel, blocksOf, blockWeightsKernel, fromBlockedKernel, toBlockedKernel, type BlockedGeometry } from './layout-kernels.js';

function checkBlocked(x: Tensor, op: string, what = 'input'): void {
  if (x.rank !== 5 || x.shape[4] !== 4) throw new Error(`medgrad: ${op}: ${what} must be channel-blocked [N, Cb, H, W, 4], got shape ${fmt(x.shape)}`);
}

// The records' forwards run with recording off, so the refusal of inputs that need gradients
// wraps the record's function (the op registry keeps the record's own).
function noGrad(op: string, xs: Tensor[]): void {
  if (isGradEnabled() && xs.some((t) => t.requiresGrad)) throw new Error(`medgrad: ${op} has no backward (an experiment of the blocked layout); call it on tensors that need no gradient or under noGrad`);
}

// NCHW shapes with channel counts on both sides of a multiple of 4, batch 1 and 1x1 planes.
const NCHW_CASES = [[1, 3, 5, 7], [2, 5, 3, 3], [3, 8, 4, 2], [1, 1, 1, 1], [2, 9, 6, 5]];

/** [N, C, H, W] -> channel-blocked [N, ceil(C/4), H, W, 4], padding lanes zero. */
export const toBlocked: (x: Tensor) => Tensor = op({
  name: 'toBlocked', kind: 'movement',
  check: {
    tol: EXACT, grad: GRAD,
    cases: (r: Rng) => NCHW_CASES.map((s) => ({ inputs: [r.arr(s)], args: [], label: `[${s}]` })),
    ref: ([x]) => B.toBlocked(x!),
  },
  forward: (x: Tensor): Tensor => { float(x, 'toBlocked', 'input'); checkNCHW(x, 'toBlocked'); return toBlockedKernel(x); },
  backward: (g: Tensor, _y: Tensor, x: Tensor) => [fromBlocked(g, x.shape[1]!)],
});

/** Channel-blocked [N, Cb, H, W, 4] -> [N, C, H, W] (C in (4 Cb - 4, 4 Cb]); the padding lanes are dropped. */
export const fromBlocked: (x: Tensor, channels: number) => Tensor = op({
  name: 'fromBlocked', kind: 'movement',
  check: {
    tol: EXACT, grad: GRAD,
    cases: (r: Rng) => NCHW_CASES.map(([n, c, h, w]) => ({ inputs: [r.arr([n!, blocksOf(c!), h!, w!, 4])], args: [c], label: `[${n}, ${blocksOf(c!)}, ${h}, ${w}, 4] to ${c} channels` })),
    ref: ([x], [c]) => B.fromBlocked(x!, c as number),
  },
  forward: (x: Tensor, channels: number): Tensor => {
    float(x, 'fromBlocked', 'input'); checkBlocked(x, 'fromBlocked');
    if (!Number.isInteger(channels) || blocksOf(channels) !== x.shape[1]) throw new Error(`medgrad: fromBlocked: ${channels} channels do not fill the ${x.shape[1]} blocks of input ${fmt(x.shape)}`);
    return fromBlockedKernel(x, channels);
  },
  backward: (g: Tensor) => [toBlocked(g)],
});

const blockWeightsRecord: (w: Tensor) => Tensor = op({
  name: 'blockWeights', kind: 'movement',
  check: {
    tol: EXACT, grad: false,
    cases: (r: Rng) => [[4, 3, 3, 3], [5, 9, 1, 2], [1, 1, 1, 1]].map((s) => ({ inputs: [r.arr(s)], args: [], label: `[${s}]` })),
    ref: ([w]) => B.blockWeights(w!),
  },
  forward: (w: Tensor): Tensor => {
    float(w, 'blockWeights', 'weight');
    if (w.rank !== 4) throw new Error(`medgrad: blockWeights: weight must be [Cout, Cin, KH, KW], got shape ${fmt(w.shape)}`);
    return blockWeightsKernel(w);
  },
});

export interface BlockedConv2dOptions { stride?: Pair; padding?: Padding }

type ConvCase = [number[], number[], Pair, Padding];
const CONV_CASES: ConvCase[] = [
  [[1, 3, 7, 6], [5, 3, 3, 3], 1, 'valid'], [[2, 5, 6, 7], [3, 5, 3, 3], 2, 'same'], [[1, 6, 9, 21], [9, 6, 3, 3], 1, 1],
  [[2, 4, 11, 19], [17, 4, 3, 3], 1, 'same'], [[1, 2, 9, 8], [3, 2, 3, 2], [2, 1], [1, 0, 2, 1]], [[1, 7, 11, 11], [6, 7, 5, 5], 2, 'same'],
  [[3, 5, 5, 5], [4, 5, 1, 1], 2, 'valid'],
];

const blockedConv2dRecord: (x: Tensor, w: Tensor, options?: BlockedConv2dOptions) => Tensor = op({
  name: 'blockedConv2d', kind: 'conv',
  check: {
    tol: { atol: 2e-5, rtol: 1e-5 }, grad: false,
    cases: (r: Rng) => CONV_CASES.map(([xs, ws, stride, padding]) => ({
      inputs: [B.toBlocked(r.arr(xs, -1, 1)), B.blockWeights(r.arr(ws, -1, 1))], args: [{ stride, padding }, xs[1], ws],
      label: `[${xs}] * [${ws}] stride ${JSON.stringify(stride)} padding ${JSON.stringify(padding)}`,
    })),
    run: (f, [x, w], [o]) => f(x, w, o),
    ref: ([x, w], [o, cin, ws]) => {
      const { stride, padding } = o as { stride: Pair; padding: Padding };
      const [Co, , KH, KW] = ws as number[];
      const xs = B.fromBlocked(x!, cin as number);
      const wc = B.unblockWeights(w!, Co!, cin as number);
      const g = windowGeometry(xs.shape, KH!, KW!, stride, padding, 'blockedConv2d');
      return B.toBlocked(R.conv2d(xs, wc, null, g.sh, g.sw, [g.pt, g.pb, g.pl, g.pr]));
    },
  },
  forward: (x: Tensor, w: Tensor, o: BlockedConv2dOptions = {}): Tensor => {
    float(x, 'blockedConv2d', 'input'); float(w, 'blockedConv2d', 'weight');
    checkBlocked(x, 'blockedConv2d'); checkBlocked(w, 'blockedConv2d', 'weight (from blockWeights)');
    const [N, Cib, H, W] = x.shape as [number, number, number, number, number];
    const [Cob, Cinp, KH, KW] = w.shape as [number, number, number, number, number];
    if (Cinp !== 4 * Cib) throw new Error(`medgrad: blockedConv2d: input ${fmt(x.shape)} has ${Cib} channel blocks but weight ${fmt(w.shape)} expects ${Cinp / 4}`);
    const g: BlockedGeometry = { N, Cib, H, W, Cob, KH, KW, ...windowGeometry([N, 4 * Cib, H, W], KH, KW, o.stride ?? 1, o.padding ?? 'valid', 'blockedConv2d') };
    return blockedConvKernel(x, w, g);
  },
});

export interface BlockedBatchNormOptions { eps?: number; momentum?: number }

const blockedBatchNormRelu2dRecord: (x: Tensor, channels: number, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, options?: BlockedBatchNormOptions) => Tensor = op({
  name: 'blockedBatchNormRelu2d', kind: 'norm',
  check: {
    tol: { atol: 2e-5, rtol: 2e-5 }, grad: false,
    cases: (r: Rng) => [[2, 3, 4, 5], [1, 6, 3, 3], [3, 1, 1, 2], [2, 9, 7, 5], [1, 4, 33, 40]].map((xs) => ({
      inputs: [B.toBlocked(r.arr(xs, -2, 3)), r.arr([xs[1]!], 0.5, 1.5), r.arr([xs[1]!], -1, 1), r.arr([xs[1]!], -0.5, 0.5), r.arr([xs[1]!], 0.5, 2)],
      args: [xs[1], { eps: 1e-3 }], label: `[${xs}] training`,
    })),
    run: (f, [x, g, b, m, v], [c, o]) => f(x, c, g, b, m, v, o),
    ref: ([x, g, b], [c]) => B.toBlocked(R.map(R.batchNorm(B.fromBlocked(x!, c as number), g!, b!, 1e-3).y, (t) => Math.max(t, 0))),
  },
  forward: (x: Tensor, channels: number, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, o: BlockedBatchNormOptions = {}): Tensor => {
    float(x, 'blockedBatchNormRelu2d', 'input'); checkBlocked(x, 'blockedBatchNormRelu2d');
    if (!Number.isInteger(channels) || blocksOf(channels) !== x.shape[1]) throw new Error(`medgrad: blockedBatchNormRelu2d: ${channels} channels do not fill the ${x.shape[1]} blocks of input ${fmt(x.shape)}`);
    for (const [t, name] of [[gamma, 'weight'], [beta, 'bias'], [rm, 'running mean'], [rv, 'running variance']] as const) {
      if (float(t, 'blockedBatchNormRelu2d', name).rank !== 1 || t.shape[0] !== channels) throw new Error(`medgrad: blockedBatchNormRelu2d: ${name} of shape ${fmt(t.shape)} does not match ${channels} channels`);
    }
    if (x.shape[0]! * x.shape[2]! * x.shape[3]! < 2) throw new Error(`medgrad: blockedBatchNormRelu2d: training needs more than one value per channel, got input ${fmt(x.shape)}`);
    const { y, mean, invstd } = blockedBatchNormKernel(x, channels, gamma, beta, rm, rv, { ...o, relu: true });
    mean.dispose(); invstd.dispose();
    return y;
  },
});

/** Convolution weights [Cout, Cin, KH, KW] -> [ceil(Cout/4), 4 ceil(Cin/4), KH, KW, 4] for blockedConv2d (no gradient). */
export const blockWeights = (w: Tensor): Tensor => { noGrad('blockWeights', [w]); return blockWeightsRecord(w); };

/**
 * Direct convolution in the blocked layout: x [N, Cib, H, W, 4] (padding lanes zero) with
 * weights from blockWeights, no bias; y [N, Cob, OH, OW, 4] with padding lanes zero. No gradient.
 */
export const blockedConv2d = (x: Tensor, w: Tensor, options?: BlockedConv2dOptions): Tensor => { noGrad('blockedConv2d', [x, w]); return blockedConv2dRecord(x, w, options); };

/**
 * relu(batchNorm2d(x)) in training mode on a blocked x of `channels` real channels (batch
 * statistics; runningMean / runningVar [C] updated in place). Padding lanes stay zero. No gradient.
 */
export const blockedBatchNormRelu2d = (x: Tensor, channels: number, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, options?: BlockedBatchNormOptions): Tensor => {
  noGrad('blockedBatchNormRelu2d', [x, weight, bias]);
  return blockedBatchNormRelu2dRecord(x, channels, weight, bias, runningMean, runningVar, options);
};
