// A convolution followed by an inference-mode batch norm (and a residual add and ReLU), run as
// ONE convolution: the batch norm folded in (bn(conv(x, w) + b) = conv(x, w s) + b' with
// s = gamma / sqrt(var + eps), b' = (b - mean) s + beta), the residual and ReLU in the
// convolution's epilogue (conv-epilogue.ts), on whichever algorithm the registry picks (direct,
// tiled, Winograd: all have the epilogue). What a study model's conv-BN(-ReLU) layers run in
// eval mode (attacks, evaluation); training keeps conv2d + batchNorm2d.
//
// The fold is applied to the outputs rather than written into the weights: the epilogue
// computes s acc + b' (EPI_SCALE), which is conv(x, w s) + b' up to rounding. Rewriting w s on
// every call (no tensor version tells when a weight changed, so a folded copy cannot be cached)
// cost a pass over the weights: 266 ms of a 1.1 s CBR-LargeT forward (8.6 M weights, 32 px,
// batch 8) on lavapipe, where the scale in the epilogue costs nothing (conv2d-fold.wgsl).
//
// Gradients: the fold is a differentiable function of w, b, gamma and beta, so every parameter
// gets its exact gradient (computed only where an input requires grad; attacks freeze the
// weights and pay for the input gradient alone). With dy' = dy masked by the ReLU:
// dx = conv input gradient of (s dy') with w (= of dy' with w s; one mask-and-scale pass),
// dw = s dW', db = s dB', d beta = dB', d gamma = (sum(dW' w) + dB' (b - mean)) / sqrt(var + eps),
// where dW', dB' are the plain convolution's weight and bias gradients of dy'; the residual's is
// dy'. The running statistics get none (as batchNorm2d in inference).
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { fmt, sameShape } from '../shape.js';
import { f32bits, packParams } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';
import type { Rng } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { savingOp } from './record.js';
import { float } from './checks.js';
import { add, mul, neg, pow, sqrt, sub } from './elementwise.js';
import { reshape } from './movement.js';
import { sum } from './reduce.js';
import { channelSums } from './norm.js';
import { convForward, convGeometry, convInputGrad, convWeightGrad, conv2dOutputSize, type Conv2dOptions, type Geometry } from './conv.js';
import type { Padding } from './window.js';

export interface ConvBatchNormOptions extends Conv2dOptions {
  /** The batch norm's epsilon (default 1e-5, as batchNorm2d). */
  eps?: number;
  /** Apply ReLU after the batch norm (and the residual). */
  relu?: boolean;
}

type Size = { C: number; HW: number };
const FOLD = defineKernel<Size>({ name: 'conv2d.foldBatchNorm', variants: [{ name: 'default', family: 'conv2d-fold', entry: 'fold_bn' }] });
const MASK_SCALE = defineKernel<Size>({ name: 'conv2d.maskScale', variants: [{ name: 'default', family: 'conv2d-fold', entry: 'mask_scale' }] });
const flag = (name: string) => runtime().shaderCode('conv2d-fold', name);

/** The epilogue's affine [2, Cout]: shifts (b - mean) s + beta, then scales s = gamma / sqrt(var + eps). */
function fold(b: Tensor | null, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, eps: number): Tensor {
  const C = gamma.shape[0]!;
  const affine = empty([2, C]);
  runtime().launch(FOLD, { C, HW: 0 }, (k) => ({
    op: 'convBatchNorm2d', label: `convBatchNorm2d fold [${C}]`, params: packParams([C, 0, b ? flag('HAS_BIAS') : 0, f32bits(eps), 0]),
    buffers: { b: (b ?? gamma).buffer, gamma: gamma.buffer, beta: beta.buffer, mean: rm.buffer, variance: rv.buffer, affine_out: affine.buffer },
    workgroups: [Math.ceil(C / k.workgroupSize[0]), 1],
  }));
  return affine;
}

/** s dy' (dy' = dy masked by out > 0 when relu), and dy' itself when asked, in one pass. */
function maskScale(dy: Tensor, out: Tensor, affine: Tensor, relu: boolean, wantMasked: boolean): { scaled: Tensor; masked: Tensor | null } {
  const [N, C, H, W] = dy.shape as [number, number, number, number];
  const HW = H * W, rt = runtime();
  const scaled = empty(dy.shape);
  // The masked output is bound either way (a tiny stand-in when not asked: the kernel never writes it).
  const masked = empty(wantMasked ? dy.shape : [1]);
  rt.launch(MASK_SCALE, { C, HW }, (k) => ({
    op: 'convBatchNorm2d', label: `convBatchNorm2d mask-scale [${fmt(dy.shape)}]`,
    params: packParams([C, HW, (relu ? flag('RELU') : 0) | (wantMasked ? flag('WRITE_MASKED') : 0), 0, N * C]),
    buffers: { dy: dy.buffer, out: out.buffer, affine: affine.buffer, masked: masked.buffer, scaled: scaled.buffer },
    // About 8 values per invocation, planes along y.
    workgroups: [Math.max(1, Math.min(64, Math.ceil(HW / 8 / k.workgroupSize[0]))), Math.min(N * C, rt.maxWorkgroups)],
    bytes: 3 * dy.nbytes,
  }));
  if (!wantMasked) masked.dispose();
  return { scaled, masked: wantMasked ? masked : null };
}

function check(x: Tensor, w: Tensor, b: Tensor | null, bn: Tensor[], residual: Tensor | null, o: ConvBatchNormOptions): Geometry {
  // Float32 only: the folded scale and shift are float32, and no float16 path needs this op (mixed precision evaluates in float32).
  float(x, 'convBatchNorm2d', 'input');
  const g = convGeometry(x, w, b ?? undefined, o);
  ['weight', 'bias', 'running mean', 'running variance'].forEach((name, i) => {
    const t = bn[i]!;
    if (float(t, 'convBatchNorm2d', name).rank !== 1 || t.shape[0] !== g.Cout) {
      throw new Error(`medgrad: convBatchNorm2d: batch-norm ${name} of shape ${fmt(t.shape)} does not match the convolution's ${g.Cout} output channels`);
    }
  });
  const out = [g.N, g.Cout, g.OH, g.OW];
  if (residual && !sameShape(float(residual, 'convBatchNorm2d', 'residual').shape, out)) {
    throw new Error(`medgrad: convBatchNorm2d: residual of shape ${fmt(residual.shape)} does not match the output's shape ${fmt(out)}`);
  }
  return g;
}

interface Saved { affine: Tensor }

type Case = [number[], number[], number | [number, number], Padding, boolean];
// Odd sizes, batch 1, every padding kind, stride 2, 1x1 and non-square kernels; the 3x3
// stride-1 ones are what Winograd serves.
const CASES: Case[] = [
  [[1, 3, 7, 6], [4, 3, 3, 3], 1, 'same', true], [[2, 2, 6, 7], [3, 2, 3, 3], 2, 'same', false],
  [[1, 5, 5, 5], [6, 5, 1, 1], 1, 'valid', true], [[2, 3, 9, 8], [5, 3, 3, 2], [2, 1], [1, 0, 2, 1], false],
  [[1, 6, 9, 11], [5, 6, 3, 3], 1, [2, 0, 1, 2], true],
  // CBR-LargeT's last layer in miniature: a 7x7 kernel on a 2x2 map (cropped to its centre 3x3).
  [[2, 3, 2, 2], [4, 3, 7, 7], 1, 'same', true],
];

/** The float64 reference: relu(batchNorm(conv2d(x, w, b)) + residual), inference statistics. */
export function convBatchNormRef(x: R.Arr, w: R.Arr, b: R.Arr | null, bn: R.Arr[], residual: R.Arr | null, o: ConvBatchNormOptions): R.Arr {
  const [sh, sw] = typeof o.stride === 'object' ? o.stride : [o.stride ?? 1, o.stride ?? 1];
  const padding = o.padding ?? 'valid';
  const pads = padding === 'same' ? R.tfSamePads(x.shape[2]!, x.shape[3]!, w.shape[2]!, w.shape[3]!, sh, sw)
    : padding === 'valid' ? [0, 0, 0, 0] : (padding as [number, number, number, number]);
  const z = R.batchNorm(R.conv2d(x, w, b, sh, sw, pads as [number, number, number, number]), bn[0]!, bn[1]!, o.eps ?? 1e-5, { mean: bn[2]!, var: bn[3]! }).y;
  const s = residual ? R.zip([z, residual], (p, q) => p + q) : z;
  return o.relu ? R.map(s, (t) => Math.max(t, 0)) : s;
}

const fusedCheck = (bias: boolean, residual: boolean) => ({
  tol: { atol: 3e-5, rtol: 3e-5 }, grad: { atol: 1e-4, rtol: 5e-4 },
  // Not the running statistics (no gradient, as batchNorm2d in inference).
  gradInputs: [0, 1, ...(bias ? [2] : []), ...[3, 4].map((i) => i - (bias ? 0 : 1)), ...(residual ? [7 - (bias ? 0 : 1)] : [])],
  cases: (r: Rng) => CASES.map(([xs, ws, stride, padding, relu]) => {
    const C = ws[0]!;
    const [OH, OW] = conv2dOutputSize(xs, [ws[2]!, ws[3]!], { stride, padding });
    return {
      inputs: [r.arr(xs, -1, 1), r.arr(ws, -1, 1), ...(bias ? [r.arr([C], -1, 1)] : []), r.arr([C], 0.5, 1.5), r.arr([C], -1, 1),
        r.arr([C], -0.5, 0.5), r.arr([C], 0.5, 2), ...(residual ? [r.arr([xs[0]!, C, OH, OW], -1, 1)] : [])],
      args: [{ stride, padding, eps: 1e-3, relu: relu || residual }],
      label: `[${xs}] * [${ws}] stride ${JSON.stringify(stride)} padding ${JSON.stringify(padding)}${bias ? ' +bias' : ''}${residual ? ' +residual' : ''}${relu || residual ? ' relu' : ''}`,
    };
  }),
  run: <T>(f: (...a: unknown[]) => T, xs: T[], [o]: unknown[]) =>
    bias ? f(xs[0], xs[1], xs[2], xs[3], xs[4], xs[5], xs[6], xs[7] ?? null, o) : f(xs[0], xs[1], null, xs[2], xs[3], xs[4], xs[5], xs[6] ?? null, o),
  ref: (xs: R.Arr[], [o]: unknown[]) => {
    const [x, w, ...rest] = xs;
    const b = bias ? rest.shift()! : null;
    return convBatchNormRef(x!, w!, b, rest.slice(0, 4), rest[4] ?? null, o as ConvBatchNormOptions);
  },
});

/**
 * relu(batchNorm2d(conv2d(x, weight, bias), ...inference statistics) + residual) as one
 * convolution (relu and residual optional): eval-mode conv-BN(-ReLU) layers and ResNet block
 * tails. Values equal the unfused ops' up to float32 rounding (the scale and shift round differently from the separate passes).
 */
export const convBatchNorm2d: (x: Tensor, weight: Tensor, bias: Tensor | null, bnWeight: Tensor, bnBias: Tensor, runningMean: Tensor, runningVar: Tensor,
  residual?: Tensor | null, options?: ConvBatchNormOptions) => Tensor = savingOp({
  name: 'convBatchNorm2d', kind: 'conv',
  check: [fusedCheck(true, false), fusedCheck(false, false), fusedCheck(true, true), fusedCheck(false, true)],
  forward: (x: Tensor, w: Tensor, b: Tensor | null, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, residual: Tensor | null = null, o: ConvBatchNormOptions = {}): [Tensor, Saved] => {
    const g = check(x, w, b, [gamma, beta, rm, rv], residual, o);
    const affine = fold(b, gamma, beta, rm, rv, o.eps ?? 1e-5);
    return [convForward(x, w, { affine, residual, relu: o.relu }, g, 'convBatchNorm2d'), { affine }];
  },
  backward: (gy: Tensor, out: Tensor, { affine }: Saved, x: Tensor, w: Tensor, b: Tensor | null, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor,
    residual: Tensor | null = null, o: ConvBatchNormOptions = {}): Grad => tidy(() => {
    const g = check(x, w, b, [gamma, beta, rm, rv], residual, o);
    const params = w.requiresGrad || b?.requiresGrad || gamma.requiresGrad || beta.requiresGrad;
    const relu = o.relu ?? false;
    // dy' (masked) is what the residual and the parameters need; s dy' what the input needs.
    const wantMasked = relu && (residual !== null || Boolean(params));
    const { scaled, masked } = x.requiresGrad || wantMasked ? maskScale(gy, out, affine, relu, wantMasked) : { scaled: null, masked: null };
    const dy = masked ?? gy;
    const dx = x.requiresGrad ? convInputGrad(scaled!, w, g) : null;
    let dw: Tensor | null = null, db: Tensor | null = null, dgamma: Tensor | null = null, dbeta: Tensor | null = null;
    if (params) {
      const invstd = pow(sqrt(add(rv, o.eps ?? 1e-5)), -1);
      const s = mul(gamma, invstd);
      const dB = channelSums(dy);
      const dW = w.requiresGrad || gamma.requiresGrad ? convWeightGrad(dy, x, g) : null;
      if (w.requiresGrad) dw = mul(dW!, reshape(s, [g.Cout, 1, 1, 1]));
      if (b?.requiresGrad) db = mul(dB, s);
      if (beta.requiresGrad) dbeta = dB;
      if (gamma.requiresGrad) {
        const dot = sum(reshape(mul(dW!, w), [g.Cout, g.Cin * g.KH * g.KW]), 1);
        dgamma = mul(add(dot, mul(dB, b ? sub(b, rm) : neg(rm))), invstd);
      }
    }
    // One gradient per tensor input (a null bias is not an input).
    return [dx, dw, ...(b ? [db] : []), dgamma, dbeta, null, null, ...(residual ? [dy] : [])];
  }),
});
