// Softmax, log-softmax and cross-entropy with integer labels (softmax.wgsl). The class axis
// is moved last when it is not. Cross-entropy's forward and backward are fused kernels: the
// backward recomputes softmax from the logits instead of storing it.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { fmt, normAxis } from '../shape.js';
import { packParams } from '../kernels/launch.js';
import { defineKernel, isHardwareGpu } from '../kernels/variants.js';
import { GRAD, TRANS, type OpCheck } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { op } from './record.js';
import { floating } from './checks.js';
import { permute } from './movement.js';
import { mul, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';

/** The row kernels of softmax.wgsl, by the WGSL's names for them. */
const ROWS = {
  softmax: 'SOFTMAX', logSoftmax: 'LOG_SOFTMAX', crossEntropy: 'CROSS_ENTROPY', 'crossEntropy.backward': 'CROSS_ENTROPY_BACKWARD',
  'crossEntropy.soft': 'CROSS_ENTROPY_SOFT', 'crossEntropy.soft.backward': 'CROSS_ENTROPY_SOFT_BACKWARD',
} as const;

/** One workgroup per row; its reductions in workgroup memory, or in subgroups where the adapter has them (a GPU's default). */
export const ROW_KERNEL = defineKernel<{ rows: number; cols: number; half?: boolean }>({
  name: 'softmax.rows',
  variants: [
    { name: 'workgroup-per-row', family: 'softmax', entry: 'rows', half: true },
    { name: 'subgroup', family: 'softmax-subgroup', entry: 'rows', requires: { features: ['subgroups'] } },
  ],
  prefer: (_s, c, caps) => (isHardwareGpu(caps) ? c.find((v) => v.name === 'subgroup') : undefined) ?? c[0]!,
});

function rowsKernel(name: keyof typeof ROWS, x: Tensor, outShape: readonly number[],
  extra: { labels?: Tensor; g?: Tensor; targets?: Tensor } = {}): Tensor {
  const cols = x.shape[x.rank - 1] ?? 1;
  const rows = x.size / Math.max(cols, 1);
  const out = empty(outShape);
  if (out.size === 0) return out;
  const rt = runtime();
  // float16 x is read into f32; the outputs (softmax, losses, logit gradients) are float32.
  rt.launch(ROW_KERNEL, { rows, cols, ...(x.dtype === 'float16' && { half: true }) }, () => ({
    op: name, label: `${name} ${fmt(x.shape)}`,
    params: packParams([rows, cols]),
    buffers: { out: out.buffer, x: x.buffer, labels: (extra.labels ?? x).buffer, g: (extra.g ?? x).buffer, targets: (extra.targets ?? x).buffer },
    workgroups: [Math.min(rows, rt.maxWorkgroups)], flops: 5 * x.size, bytes: x.nbytes + out.nbytes,
  }), { OP: rt.shaderCode('softmax', ROWS[name]) });
  return out;
}

/** Applies fn over the last axis after moving `axis` there, and moves it back. */
function alongAxis(x: Tensor, axis: number, op: string, fn: (t: Tensor) => Tensor): Tensor {
  const ax = normAxis(axis, floating(x, op).rank, x.shape, op);
  if (ax === x.rank - 1 || x.rank === 0) return fn(x);
  const perm = x.shape.map((_, i) => i);
  perm[ax] = x.rank - 1; perm[x.rank - 1] = ax;
  return tidy(() => permute(fn(permute(x, perm)), perm));
}

const softmaxCheck = (log: boolean): OpCheck => ({
  tol: TRANS, grad: GRAD,
  cases: (r) => ([[[1, 2], -1], [[4, 7], -1], [[3, 5], 0], [[2, 3, 4], 1], [[2, 300], 1]] as Array<[number[], number]>)
    .map(([s, axis]) => ({ inputs: [r.arr(s, -5, 5)], args: [axis], label: `[${s}] axis ${axis}` })),
  ref: ([x], [axis]) => {
    const ax = (axis as number) < 0 ? (axis as number) + x!.shape.length : (axis as number);
    const p = x!.shape.map((_, i) => i); p[ax] = p.length - 1; p[p.length - 1] = ax;
    return R.permute(R.softmax(R.permute(x!, p), log), p);
  },
});

export const softmax: (x: Tensor, axis?: number) => Tensor = op({
  name: 'softmax', kind: 'softmax', method: true, check: softmaxCheck(false),
  forward: (x: Tensor, axis = -1): Tensor => alongAxis(x, axis, 'softmax', (t) => rowsKernel('softmax', t, t.shape)),
  backward: (g: Tensor, y: Tensor, _x: Tensor, axis = -1): Grad => [mul(y, sub(g, sum(mul(g, y), axis, true)))],
});

export const logSoftmax: (x: Tensor, axis?: number) => Tensor = op({
  name: 'logSoftmax', kind: 'softmax', method: true, check: softmaxCheck(true),
  forward: (x: Tensor, axis = -1): Tensor => alongAxis(x, axis, 'logSoftmax', (t) => rowsKernel('logSoftmax', t, t.shape)),
  backward: (g: Tensor, _y: Tensor, x: Tensor, axis = -1): Grad => [sub(g, mul(softmax(x, axis), sum(g, axis, true)))],
});

function checkTargets(logits: Tensor, target: Tensor): void {
  floating(logits, 'crossEntropy', 'logits');
  if (logits.rank !== 2) throw new Error(`medgrad: crossEntropy: logits must be [batch, classes], got shape ${fmt(logits.shape)}`);
  if (!(target instanceof Tensor)) throw new Error('medgrad: crossEntropy: target must be a Tensor (int32 class indices or float32 probabilities)');
  if (target.dtype === 'int32') {
    if (target.rank !== 1 || target.shape[0] !== logits.shape[0]) {
      throw new Error(`medgrad: crossEntropy: labels of shape ${fmt(target.shape)} do not match logits of shape ${fmt(logits.shape)} (expected [${logits.shape[0]}])`);
    }
  } else if (target.rank !== 2 || target.shape[0] !== logits.shape[0] || target.shape[1] !== logits.shape[1]) {
    throw new Error(`medgrad: crossEntropy: probability targets of shape ${fmt(target.shape)} do not match logits of shape ${fmt(logits.shape)} (int32 labels must have shape [${logits.shape[0]}])`);
  }
}

/**
 * Per-sample cross-entropy -sum_c t_c log softmax(logits)_c, fused and stable for large logits.
 * target: int32 class indices [batch] (a label outside [0, classes) gives NaN) or float32
 * probabilities [batch, classes] (one-hot or soft; gradient flows to logits only).
 */
export const crossEntropyPerSample: (logits: Tensor, target: Tensor) => Tensor = op({
  name: 'crossEntropy', kind: 'softmax',
  check: [{
    tol: TRANS, grad: GRAD,
    cases: (r) => [[1, 2], [5, 3], [8, 10], [3, 130]].map(([n, c]) => {
      const labels = Array.from({ length: n! }, () => r.int(0, c! - 1));
      // An Int32Array argument reaches the op as an int32 tensor (see OpCheck).
      return { inputs: [r.arr([n!, c!], -4, 4)], args: [Int32Array.from(labels)], label: `[${n}, ${c}]` };
    }),
    ref: ([x], [labels]) => R.crossEntropy(x!, Array.from(labels as Int32Array)),
  }, {
    tol: TRANS, grad: GRAD, gradInputs: [0],
    cases: (r) => [[1, 2], [4, 3], [3, 9]].map(([n, c]) => ({ inputs: [r.arr([n!, c!], -4, 4), r.arr([n!, c!], 0, 1)], args: [], label: `[${n}, ${c}] soft targets` })),
    ref: ([x, t]) => {
      const ls = R.softmax(x!, true);
      const C = x!.shape[1]!;
      return R.arr([x!.shape[0]!], Array.from({ length: x!.shape[0]! }, (_, i) => -Array.from({ length: C }, (_, k) => t!.data[i * C + k]! * ls.data[i * C + k]!).reduce((a, b) => a + b, 0)));
    },
  }],
  forward: (logits: Tensor, target: Tensor): Tensor => {
    checkTargets(logits, target);
    return target.dtype === 'int32'
      ? rowsKernel('crossEntropy', logits, [logits.shape[0]!], { labels: target })
      : rowsKernel('crossEntropy.soft', logits, [logits.shape[0]!], { targets: target });
  },
  backward: (g: Tensor, _y: Tensor, logits: Tensor, target: Tensor): Grad => [target.dtype === 'int32'
    ? rowsKernel('crossEntropy.backward', logits, logits.shape, { labels: target, g })
    : rowsKernel('crossEntropy.soft.backward', logits, logits.shape, { targets: target, g }), null],
});

export type Reduction = 'mean' | 'sum' | 'none';

/** Cross-entropy of logits [batch, classes] against labels or probabilities, like torch's. */
export function crossEntropy(logits: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const r = options.reduction ?? 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new Error(`medgrad: crossEntropy: reduction must be 'mean', 'sum' or 'none', got '${String(r)}'`);
  const per = crossEntropyPerSample(logits, target);
  return r === 'none' ? per : r === 'sum' ? sum(per) : mean(per);
}
