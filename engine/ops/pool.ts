// Pooling over NCHW tensors (pool.wgsl): max (its backward routes each gradient to the
// window's maximum, recorded in forward), average over the real inputs of each window, and
// global average pooling (a mean over H and W, no copy since NCHW keeps them contiguous).
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor.js';
import { fmt } from '../shape.js';
import { defineSavedOp, defineOp } from './define.js';
import { float } from './checks.js';
import { gridFor, packParams } from './launch.js';
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

const KIND = { max: 0, avg: 1 } as const;

function launch(entry: 'pool_fwd' | 'pool_bwd', kind: keyof typeof KIND, op: string, x: Tensor, g: Geometry, buffers: Record<string, GPUBuffer>, n: number): void {
  const rt = runtime();
  rt.dispatch(rt.kernel('pool', entry, { OP: KIND[kind] }), {
    op, label: `${op} ${fmt(x.shape)} k${g.KH}x${g.KW} s${g.sh}x${g.sw}`, params: params(g), buffers,
    workgroups: gridFor(n), flops: n * g.KH * g.KW, bytes: 4 * (x.size + n),
  });
}

/** Max over kH x kW windows; stride defaults to the kernel size (as in PyTorch and Keras). */
export const maxPool2d: (x: Tensor, kernel: Pair, options?: Pool2dOptions) => Tensor = defineSavedOp('maxPool2d',
  (x: Tensor, kernel: Pair, o: Pool2dOptions = {}): [Tensor, Tensor] => {
    const g = geometry(x, kernel, o, 'maxPool2d');
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW]);
    const idx = empty(y.shape, 'int32');
    launch('pool_fwd', 'max', 'maxPool2d', x, g, { x: x.buffer, y: y.buffer, idx: idx.buffer }, y.size);
    return [y, idx];
  },
  (gy, _y, idx, x, kernel, o = {}) => {
    const g = geometry(x, kernel, o, 'maxPool2d');
    const dx = empty(x.shape);
    launch('pool_bwd', 'max', 'maxPool2d.backward', x, g, { dy: gy.buffer, arg: idx.buffer, dx: dx.buffer }, x.size);
    return [dx];
  });

/** Average over the real (unpadded) inputs of each window. */
export const avgPool2d: (x: Tensor, kernel: Pair, options?: Pool2dOptions) => Tensor = defineOp('avgPool2d',
  (x: Tensor, kernel: Pair, o: Pool2dOptions = {}) => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW]);
    const unused = empty([1], 'int32'); // the shared kernel's index output, not written for averages
    launch('pool_fwd', 'avg', 'avgPool2d', x, g, { x: x.buffer, y: y.buffer, idx: unused.buffer }, y.size);
    unused.dispose();
    return y;
  },
  (gy, _y, x, kernel, o = {}) => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    const dx = empty(x.shape);
    launch('pool_bwd', 'avg', 'avgPool2d.backward', x, g, { dy: gy.buffer, arg: gy.buffer, dx: dx.buffer }, x.size);
    return [dx];
  });

/** Mean over H and W: [N, C, H, W] -> [N, C] (keepdims gives [N, C, 1, 1]). */
export function globalAvgPool2d(x: Tensor, keepdims = false): Tensor {
  checkNCHW(x, 'globalAvgPool2d');
  return mean(x, [2, 3], keepdims);
}
