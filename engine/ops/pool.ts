// Pooling over NCHW tensors (pool.wgsl): max (its backward routes each gradient to the
// window's maximum, recorded in forward), average over the real inputs of each window, and
// global average pooling (a mean over H and W, no copy since NCHW keeps them contiguous).
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { gridFor, packParams } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';
import { GRAD, TRANS, type OpCheck } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { composite, op, savingOp } from './record.js';
import { float } from './checks.js';
import { checkNCHW, pair, windowGeometry, type Padding, type Pair, type Window } from './window.js';
import { mean } from './reduce.js';

export interface Pool2dOptions { stride?: Pair; padding?: Padding }

interface Geometry extends Window { planes: number; H: number; W: number; KH: number; KW: number }

function geometry(x: Tensor, kernel: Pair, o: Pool2dOptions, op: string): Geometry {
  float(x, op); checkNCHW(x, op);
  const [KH, KW] = pair(kernel, 'kernel size', op);
  const g = windowGeometry(x.shape, KH, KW, o.stride ?? kernel, o.padding ?? 'valid', op);
  if (g.pt >= KH || g.pb >= KH || g.pl >= KW || g.pr >= KW) throw new Error(`medgrad: ${op}: padding must be smaller than the ${KH}x${KW} window`);
  return { ...g, planes: x.shape[0]! * x.shape[1]!, H: x.shape[2]!, W: x.shape[3]!, KH, KW };
}

const params = (g: Geometry) => packParams([g.planes, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, 0]);

const POOL = defineKernel<{ kind: 'max' | 'avg' }>({ name: 'pool.forward', variants: [{ name: 'grid', family: 'pool', entry: 'pool_fwd' }] });
const POOL_BACKWARD = defineKernel<{ kind: 'max' | 'avg' }>({ name: 'pool.backward', variants: [{ name: 'grid', family: 'pool', entry: 'pool_bwd' }] });

function launch(kernel: typeof POOL, kind: 'max' | 'avg', op: string, x: Tensor, g: Geometry, buffers: Record<string, GPUBuffer>, n: number): void {
  const rt = runtime();
  rt.launch(kernel, { kind }, (k) => ({
    op, label: `${op} ${fmt(x.shape)} k${g.KH}x${g.KW} s${g.sh}x${g.sw}`, params: params(g), buffers,
    workgroups: gridFor(n, k), flops: n * g.KH * g.KW, bytes: x.nbytes + 4 * n,
  }), { OP: rt.shaderCode('pool', kind.toUpperCase()) });
}

const poolCheck = (kind: 'max' | 'avg'): OpCheck => ({
  tol: TRANS, grad: GRAD,
  cases: (r) => ([[[1, 2, 7, 7], 3, 2, 'valid'], [[2, 1, 6, 5], 2, 2, 'same'], [[1, 2, 5, 6], 3, 2, 'same'], [[2, 2, 4, 4], 2, 1, 'valid'], [[1, 1, 8, 8], 8, 8, 'valid']] as Array<[number[], number, number, Padding]>)
    .map(([xs, k, st, pad]) => ({ inputs: [r.arr(xs)], args: [k, { stride: st, padding: pad }], label: `[${xs}] k${k} s${st} ${pad}` })),
  ref: ([x], [k, o]) => {
    const { stride: st, padding: pad } = o as { stride: number; padding: Padding };
    return R.pool2d(x!, kind, k as number, k as number, st, st,
      pad === 'same' ? R.tfSamePads(x!.shape[2]!, x!.shape[3]!, k as number, k as number, st, st) : [0, 0, 0, 0]);
  },
});

/** Max over kH x kW windows; stride defaults to the kernel size (as in PyTorch and Keras). */
export const maxPool2d: (x: Tensor, kernel: Pair, options?: Pool2dOptions) => Tensor = savingOp({
  name: 'maxPool2d', kind: 'pool', method: true, check: poolCheck('max'),
  forward: (x: Tensor, kernel: Pair, o: Pool2dOptions = {}): [Tensor, Tensor] => {
    const g = geometry(x, kernel, o, 'maxPool2d');
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW]);
    const idx = empty(y.shape, 'int32');
    launch(POOL, 'max', 'maxPool2d', x, g, { x: x.buffer, y: y.buffer, idx: idx.buffer }, y.size);
    return [y, idx];
  },
  backward: (gy: Tensor, _y: Tensor, idx: Tensor, x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Grad => {
    const g = geometry(x, kernel, o, 'maxPool2d');
    const dx = empty(x.shape);
    launch(POOL_BACKWARD, 'max', 'maxPool2d.backward', x, g, { dy: gy.buffer, arg: idx.buffer, dx: dx.buffer }, x.size);
    return [dx];
  },
});

/** Average over the real (unpadded) inputs of each window. */
export const avgPool2d: (x: Tensor, kernel: Pair, options?: Pool2dOptions) => Tensor = op({
  name: 'avgPool2d', kind: 'pool', method: true, check: poolCheck('avg'),
  forward: (x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Tensor => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW]);
    const unused = empty([1], 'int32'); // the shared kernel's index output, not written for averages
    launch(POOL, 'avg', 'avgPool2d', x, g, { x: x.buffer, y: y.buffer, idx: unused.buffer }, y.size);
    unused.dispose();
    return y;
  },
  backward: (gy: Tensor, _y: Tensor, x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Grad => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    const dx = empty(x.shape);
    launch(POOL_BACKWARD, 'avg', 'avgPool2d.backward', x, g, { dy: gy.buffer, arg: gy.buffer, dx: dx.buffer }, x.size);
    return [dx];
  },
});

/** Mean over H and W: [N, C, H, W] -> [N, C] (keepdims gives [N, C, 1, 1]). */
export const globalAvgPool2d = composite('globalAvgPool2d', (x: Tensor, keepdims = false): Tensor => {
  checkNCHW(x, 'globalAvgPool2d');
  return mean(x, [2, 3], keepdims);
});
