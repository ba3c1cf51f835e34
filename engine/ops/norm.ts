// Batch normalisation over the channels of NCHW tensors (batchnorm.wgsl). Training mode uses
// the batch's statistics and updates the running ones in place; inference mode uses the running
// statistics. Both modes are differentiable (attacks differentiate models in inference mode).
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { fmt, sameShape } from '../shape.js';
import { f32bits, packParams } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';
import { TRANS, type Rng } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { savingOp } from './record.js';
import { float } from './checks.js';
import { checkNCHW } from './window.js';
import { add, pow, sqrt } from './elementwise.js';

type Planes = { N: number; C: number; HW: number };
const kernel = (name: string, entry: string) => defineKernel<Planes>({ name: `batchnorm.${name}`, variants: [{ name: 'default', family: 'batchnorm', entry }] });
const SUMS = kernel('channelSums', 'channel_sums');
const STATS = defineKernel<Planes>({
  name: 'batchnorm.stats',
  variants: [
    { name: 'vec4', family: 'batchnorm', entry: 'bn_stats4', serves: (s) => s.HW % 4 === 0 },
    { name: 'scalar', family: 'batchnorm', entry: 'bn_stats' },
  ],
});
// The elementwise passes: vec4 where each plane's H*W is a multiple of 4, else scalar.
const planeKernel = (name: string, entry: string) => defineKernel<Planes>({
  name: `batchnorm.${name}`,
  variants: [
    { name: 'vec4', family: 'batchnorm', entry: `${entry}4`, serves: (s) => s.HW % 4 === 0 },
    { name: 'scalar', family: 'batchnorm', entry },
  ],
});
const APPLY = planeKernel('apply', 'bn_apply');
const BACKWARD = planeKernel('backward', 'bn_bwd');

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's convention, default 0.1). Keras' momentum 0.99 is 0.01 here. */
  momentum?: number;
  eps?: number;
}

/** Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3) in this engine's convention. */
export const KERAS_BATCHNORM: Required<Omit<BatchNormOptions, 'training'>> = { momentum: 0.01, eps: 1e-3 };

function dims(x: Tensor): { N: number; C: number; HW: number } {
  return { N: x.shape[0]!, C: x.shape[1]!, HW: x.shape[2]! * x.shape[3]! };
}

/** Grid for the per-plane elementwise passes: x over a plane's H*W values, y over planes. */
function planeGrid(x: Tensor, wg: number, perInvocation: number): [number, number] {
  const { N, C, HW } = dims(x);
  return [Math.max(1, Math.min(Math.ceil(HW / perInvocation / wg), 64)), Math.min(N * C, runtime().maxWorkgroups)];
}

const perInvocation = (v: { name: string }) => (v.name === 'vec4' ? 4 : 1);

function bnParams(x: Tensor, o: { training?: boolean; eps?: number; momentum?: number }): ArrayBuffer {
  const { N, C, HW } = dims(x);
  return packParams([N, C, HW, o.training ? 1 : 0, f32bits(o.eps ?? 1e-5), f32bits(o.momentum ?? 0.1), f32bits(N * HW), 0]);
}

/** The masked gradient (with `relu`: dy times the forward output's > 0 mask) and the channel sums. */
interface Sums { s1: Tensor; s2: Tensor; masked: Tensor | null }

function sumsKernel(dy: Tensor, withX?: { x: Tensor; mean: Tensor; invstd: Tensor }, reluOut?: Tensor): Sums {
  const s1 = empty([dy.shape[1]!]);
  const s2 = empty([dy.shape[1]!]); // written only with withX, but never aliased with s1
  // Without the ReLU fusion gm is not written; it still needs a buffer of its own (no aliasing).
  const masked = empty(reluOut ? dy.shape : [1]);
  const rt = runtime();
  rt.launch(SUMS, dims(dy), () => ({
    op: reluOut ? 'batchNorm2d.relu.sums' : 'channelSums', label: `channelSums ${fmt(dy.shape)}`, params: bnParams(dy, {}),
    buffers: { dy: dy.buffer, x: (withX?.x ?? dy).buffer, m_in: (withX?.mean ?? dy).buffer, s_in: (withX?.invstd ?? dy).buffer, s1: s1.buffer, s2: s2.buffer, yo: (reluOut ?? dy).buffer, gm: masked.buffer },
    workgroups: [dy.shape[1]!], bytes: dy.nbytes * (withX ? 2 : 1) + (reluOut ? 2 * dy.nbytes : 0),
  }), { OP: rt.shaderCode('batchnorm', withX ? 'WITH_XHAT' : 'SUMS_ONLY'), RELU: reluOut ? 1 : 0 });
  if (reluOut) return { s1, s2, masked };
  masked.dispose();
  return { s1, s2, masked: null };
}

/** Per-channel sum of an NCHW tensor over N, H and W: a convolution's bias gradient. */
export function channelSums(dy: Tensor): Tensor {
  const { s1, s2 } = sumsKernel(dy);
  s2.dispose();
  return s1;
}

function check(x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor): void {
  float(x, 'batchNorm2d', 'input');
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
  if (residual && !sameShape(float(residual, 'batchNormRelu2d', 'residual').shape, x.shape)) {
    throw new Error(`medgrad: batchNormRelu2d: residual of shape ${fmt(residual.shape)} does not match input of shape ${fmt(x.shape)}`);
  }
  const rt = runtime();
  const { C } = dims(x);
  let mean: Tensor, invstd: Tensor;
  if (o.training) {
    if (x.shape[0]! * x.shape[2]! * x.shape[3]! < 2) throw new Error(`medgrad: batchNorm2d: training needs more than one value per channel, got input ${fmt(x.shape)}`);
    mean = empty([C]); invstd = empty([C]);
    rt.launch(STATS, dims(x), () => ({
      op: 'batchNorm2d.stats', label: `batchNorm2d.stats ${fmt(x.shape)}`, params: bnParams(x, o),
      buffers: { x: x.buffer, x4: x.buffer, mean: mean.buffer, invstd: invstd.buffer, run_mean: rm.buffer, run_var: rv.buffer },
      workgroups: [C], bytes: x.nbytes,
    }));
  } else {
    // Inference: mean = running mean, invstd = 1 / sqrt(running var + eps).
    mean = rm.view(rm.shape);
    invstd = tidy(() => pow(sqrt(add(rv, o.eps ?? 1e-5)), -1));
  }
  const y = empty(x.shape);
  const op = relu ? 'batchNorm2d.relu' : 'batchNorm2d';
  const res = (residual ?? x).buffer;
  rt.launch(APPLY, dims(x), (k, v) => ({
    op, label: `${op} ${fmt(x.shape)}${residual ? ' +residual' : ''}`, params: bnParams(x, o),
    buffers: { x: x.buffer, m_in: mean.buffer, s_in: invstd.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer, res, x4: x.buffer, y4: y.buffer, res4: res },
    workgroups: planeGrid(x, k.workgroupSize[0], perInvocation(v)), flops: 2 * x.size, bytes: (residual ? 3 : 2) * x.nbytes,
  }), { RELU: relu ? 1 : 0, RESIDUAL: residual ? 1 : 0 });
  return [y, { mean, invstd }];
}

/** dx, d weight (= sum(dy * xhat)), d bias (= sum(dy)); with relu, dy is masked first and the masked gradient returned too. */
function normalizeBackward(g: Tensor, out: Tensor, { mean, invstd }: Saved, x: Tensor, gamma: Tensor, o: BatchNormOptions, relu: boolean): [Tensor, Tensor, Tensor, Tensor | null] {
  const { s1, s2, masked } = sumsKernel(g, { x, mean, invstd }, relu ? out : undefined);
  const dy = masked ?? g;
  const dx = empty(x.shape);
  const rt = runtime();
  rt.launch(BACKWARD, dims(x), (k, v) => ({
    op: 'batchNorm2d.backward', label: `batchNorm2d.backward ${fmt(x.shape)}`, params: bnParams(x, o),
    buffers: { x: x.buffer, dy: dy.buffer, m_in: mean.buffer, s_in: invstd.buffer, gamma: gamma.buffer, s1: s1.buffer, s2: s2.buffer, y: dx.buffer, x4: x.buffer, dy4: dy.buffer, y4: dx.buffer },
    workgroups: planeGrid(x, k.workgroupSize[0], perInvocation(v)), flops: 4 * x.size, bytes: 3 * x.nbytes,
  }), { OP: rt.shaderCode('batchnorm', o.training ? 'TRAINING' : 'INFERENCE') });
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
