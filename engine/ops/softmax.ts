// Softmax, log-softmax and cross-entropy with integer labels (softmax.wgsl). The class axis
// is moved last when it is not. Cross-entropy's forward and backward are fused kernels: the
// backward recomputes softmax from the logits instead of storing it.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor.js';
import { fmt, normAxis } from '../shape.js';
import { defineOp } from './define.js';
import { float } from './checks.js';
import { packParams } from './launch.js';
import { permute } from './movement.js';
import { mul, sub } from './elementwise.js';
import { mean, sum } from './reduce.js';

const ROWS = { softmax: 0, logSoftmax: 1, crossEntropy: 2, 'crossEntropy.backward': 3, 'crossEntropy.soft': 4, 'crossEntropy.soft.backward': 5 } as const;

function rowsKernel(name: keyof typeof ROWS, x: Tensor, outShape: readonly number[],
  extra: { labels?: Tensor; g?: Tensor; targets?: Tensor } = {}): Tensor {
  const cols = x.shape[x.rank - 1] ?? 1;
  const rows = x.size / Math.max(cols, 1);
  const out = empty(outShape);
  if (out.size === 0) return out;
  const rt = runtime();
  rt.dispatch(rt.kernel('softmax', 'rows', { OP: ROWS[name] }), {
    op: name, label: `${name} ${fmt(x.shape)}`,
    params: packParams([rows, cols]),
    buffers: { out: out.buffer, x: x.buffer, labels: (extra.labels ?? x).buffer, g: (extra.g ?? x).buffer, targets: (extra.targets ?? x).buffer },
    workgroups: [Math.min(rows, 65535)], flops: 5 * x.size, bytes: 8 * x.size,
  });
  return out;
}

/** Applies fn over the last axis after moving `axis` there, and moves it back. */
function alongAxis(x: Tensor, axis: number, op: string, fn: (t: Tensor) => Tensor): Tensor {
  const ax = normAxis(axis, float(x, op).rank, x.shape, op);
  if (ax === x.rank - 1 || x.rank === 0) return fn(x);
  const perm = x.shape.map((_, i) => i);
  perm[ax] = x.rank - 1; perm[x.rank - 1] = ax;
  return tidy(() => permute(fn(permute(x, perm)), perm));
}

export const softmax: (x: Tensor, axis?: number) => Tensor = defineOp('softmax',
  (x: Tensor, axis = -1) => alongAxis(x, axis, 'softmax', (t) => rowsKernel('softmax', t, t.shape)),
  (g, y, _x, axis = -1) => [mul(y, sub(g, sum(mul(g, y), axis, true)))]);

export const logSoftmax: (x: Tensor, axis?: number) => Tensor = defineOp('logSoftmax',
  (x: Tensor, axis = -1) => alongAxis(x, axis, 'logSoftmax', (t) => rowsKernel('logSoftmax', t, t.shape)),
  (g, _y, x, axis = -1) => [sub(g, mul(softmax(x, axis), sum(g, axis, true)))]);

function checkTargets(logits: Tensor, target: Tensor): void {
  float(logits, 'crossEntropy', 'logits');
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
export const crossEntropyPerSample: (logits: Tensor, target: Tensor) => Tensor = defineOp('crossEntropy',
  (logits: Tensor, target: Tensor) => {
    checkTargets(logits, target);
    return target.dtype === 'int32'
      ? rowsKernel('crossEntropy', logits, [logits.shape[0]!], { labels: target })
      : rowsKernel('crossEntropy.soft', logits, [logits.shape[0]!], { targets: target });
  },
  (g, _y, logits, target) => [target.dtype === 'int32'
    ? rowsKernel('crossEntropy.backward', logits, logits.shape, { labels: target, g })
    : rowsKernel('crossEntropy.soft.backward', logits, logits.shape, { targets: target, g }), null]);

export type Reduction = 'mean' | 'sum' | 'none';

/** Cross-entropy of logits [batch, classes] against labels or probabilities, like torch's. */
export function crossEntropy(logits: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  const r = options.reduction ?? 'mean';
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new Error(`medgrad: crossEntropy: reduction must be 'mean', 'sum' or 'none', got '${String(r)}'`);
  const per = crossEntropyPerSample(logits, target);
  return r === 'none' ? per : r === 'sum' ? sum(per) : mean(per);
}
