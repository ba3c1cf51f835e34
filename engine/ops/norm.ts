// Batch normalisation over the channels of NCHW tensors (kernels in norm-kernels.ts). Training mode uses
// the batch's statistics and updates the running ones in place; inference mode uses the running
// statistics. Both modes are differentiable (attacks differentiate models in inference mode).
import { Tensor, tidy } from '../tensor/tensor.js';
import { fmt, sameShape } from '../shape.js';
import { TRANS, type Rng } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { savingOp } from './record.js';
import { float, floating } from './checks.js';
import { checkNCHW } from './window.js';
import { add, pow, sqrt } from './elementwise.js';
import { cast } from './slicing.js';
import { applyPass, backwardPass, gradientSums, statistics } from './norm-kernels.js';

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's convention, default 0.1). Keras' momentum 0.99 is 0.01 here. */
  momentum?: number;
  eps?: number;
}

/** Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3) in this engine's convention. */
export const KERAS_BATCHNORM: Required<Omit<BatchNormOptions, 'training'>> = { momentum: 0.01, eps: 1e-3 };

/** Per-channel sum of an NCHW tensor over N, H and W: a convolution's bias gradient. */
export function channelSums(dy: Tensor): Tensor {
  const { s1, s2 } = gradientSums(dy);
  s2.dispose();
  return s1;
}

function check(x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor): void {
  floating(x, 'batchNorm2d', 'input');
  checkNCHW(x, 'batchNorm2d');
  const C = x.shape[1]!;
  for (const [t, name] of [[gamma, 'weight'], [beta, 'bias'], [rm, 'running mean'], [rv, 'running variance']] as const) {
    if (float(t, 'batchNorm2d', name).rank !== 1 || t.shape[0] !== C) {
      throw new Error(`medgrad: batchNorm2d: ${name} of shape ${fmt(t.shape)} does not match the ${C} channels of input ${fmt(x.shape)}`);
    }
  }
}

interface Saved { mean: Tensor; invstd: Tensor }

/** Normalises x per channel, then adds `residual` and applies ReLU when asked, in one pass. */
function normalize(x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, o: BatchNormOptions, relu: boolean, residual?: Tensor | null): [Tensor, Saved] {
  check(x, gamma, beta, rm, rv);
  if (residual && !sameShape(floating(residual, 'batchNormRelu2d', 'residual').shape, x.shape)) {
    throw new Error(`medgrad: batchNormRelu2d: residual of shape ${fmt(residual.shape)} does not match input of shape ${fmt(x.shape)}`);
  }
  if (residual && residual.dtype !== x.dtype) {
    throw new Error(`medgrad: batchNormRelu2d: residual of shape ${fmt(residual.shape)} is ${residual.dtype} but the input is ${x.dtype}`);
  }
  let saved: Saved;
  if (o.training) {
    if (x.shape[0]! * x.shape[2]! * x.shape[3]! < 2) throw new Error(`medgrad: batchNorm2d: training needs more than one value per channel, got input ${fmt(x.shape)}`);
    saved = statistics(x, rm, rv, o);
  } else {
    // Inference: mean = running mean, invstd = 1 / sqrt(running var + eps).
    saved = { mean: rm.view(rm.shape), invstd: tidy(() => pow(sqrt(add(rv, o.eps ?? 1e-5)), -1)) };
  }
  return [applyPass(x, saved, gamma, beta, o, relu, residual), saved];
}

/** dx, d weight (= sum(dy * xhat)), d bias (= sum(dy)); with relu, dy is masked first and the masked gradient returned too. */
function normalizeBackward(g: Tensor, out: Tensor, { mean, invstd }: Saved, x: Tensor, gamma: Tensor, o: BatchNormOptions, relu: boolean): [Tensor, Tensor, Tensor, Tensor | null] {
  // The kernels read g in x's storage type (a float32 gradient may reach a float16 layer).
  if (g.dtype !== x.dtype) g = cast(g, x.dtype);
  const { s1, s2, masked } = gradientSums(g, { x, mean, invstd }, relu ? out : undefined);
  const dx = backwardPass(x, masked ?? g, { mean, invstd }, gamma, { s1, s2 }, o);
  return [dx, s2, s1, masked];
}

const bnCheck = (relu: boolean, residual: boolean) => ([true, false] as const).map((training) => ({
  tol: TRANS, grad: { atol: 5e-5, rtol: 5e-4 }, gradInputs: residual ? [0, 1, 2, 5] : [0, 1, 2],
  cases: (r: Rng) => [[2, 3, 4, 5], [1, 2, 3, 3], [3, 1, 1, 2]].map((xs) => ({
    // Residuals keep the sum away from ReLU's kink, where finite differences are meaningless.
    inputs: [r.arr(xs, -2, 3), r.arr([xs[1]!], 0.5, 1.5), r.arr([xs[1]!], -1, 1), r.arr([xs[1]!], -0.5, 0.5), r.arr([xs[1]!], 0.5, 2), ...(residual ? [r.arr(xs, -1, 1)] : [])],
    args: [{ training, eps: 1e-3 }], label: `[${xs}] ${training ? 'training' : 'inference'}${residual ? ' +residual' : ''}`,
  })),
  run: relu ? <T>(f: (...a: unknown[]) => T, xs: T[], [o]: unknown[]) => f(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5] ?? null, o) : undefined,
  ref: ([x, g, b, m, v, res]: R.Arr[]) => {
    const y = R.batchNorm(x!, g!, b!, 1e-3, training ? undefined : { mean: m!, var: v! }).y;
    const z = res ? R.zip([y, res], (p, q) => p + q) : y;
    return relu ? R.map(z, (t) => Math.max(t, 0)) : z;
  },
}));


/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias per channel of x [N, C, H, W]. In training
 * the batch statistics are used and runningMean / runningVar are updated in place.
 */
export const batchNorm2d: (x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, options?: BatchNormOptions) => Tensor = savingOp({
  name: 'batchNorm2d', kind: 'norm', method: true, check: bnCheck(false, false),
  forward: (x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, o: BatchNormOptions = {}): [Tensor, Saved] => normalize(x, gamma, beta, rm, rv, o, false),
  backward: (g: Tensor, out: Tensor, saved: Saved, x: Tensor, gamma: Tensor, _beta: Tensor, _rm: Tensor, _rv: Tensor, o: BatchNormOptions = {}): Grad => {
    const [dx, dw, db] = normalizeBackward(g, out, saved, x, gamma, o, false);
    return [dx, dw, db, null, null]; // running statistics get no gradient
  },
});

/**
 * relu(batchNorm2d(x) + residual) in one pass forward and one masked pass backward: a ResNet
 * block's tail (residual given) or a conv-BN-ReLU layer's (residual null). Bitwise the unfused
 * ops' values and gradients.
 */
export const batchNormRelu2d: (x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, residual?: Tensor | null, options?: BatchNormOptions) => Tensor = savingOp({
  name: 'batchNormRelu2d', kind: 'norm', check: [...bnCheck(true, false), ...bnCheck(true, true)],
  forward: (x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, residual: Tensor | null = null, o: BatchNormOptions = {}): [Tensor, Saved] =>
    normalize(x, gamma, beta, rm, rv, o, true, residual),
  backward: (g: Tensor, out: Tensor, saved: Saved, x: Tensor, gamma: Tensor, _beta: Tensor, _rm: Tensor, _rv: Tensor, residual: Tensor | null = null, o: BatchNormOptions = {}): Grad => {
    const [dx, dw, db, masked] = normalizeBackward(g, out, saved, x, gamma, o, true);
    // The residual's gradient is the masked gradient itself.
    return [dx, dw, db, null, null, residual ? masked : null];
  },
});
