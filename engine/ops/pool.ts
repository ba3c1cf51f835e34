// Pooling over NCHW tensors (pool.wgsl): max (its backward routes each gradient to the
// window's maximum, recorded in forward), average over the real inputs of each window, and
// global average pooling (a mean over H and W, no copy since NCHW keeps them contiguous).
// Variants: the forward computes one output per invocation ('grid') or runs of RUN outputs of
// a row ('run4', 'run16') or of four outputs from whole vec4s ('vec4'), or blocks of 4 x ROWS
// outputs sharing their input rows ('rows4', 'rows2', window compiled in); the backward walks
// each plane's outputs in one invocation ('plane4', zeroing in vec4, or 'plane'), gathers per
// block of sh input rows x 4 columns with the window compiled in ('rows'), scatters phases of
// non-overlapping windows into a zeroed gradient ('phases'), or gathers per four inputs ('vec4')
// or per input ('gather'). The table rule takes the first that serves the shape, in the order
// measured fastest on lavapipe (the plane walk only with many planes and, for average, where
// 'rows' does not serve; the shared rows forward only for max).
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { fillKernel, gridFor, packParams } from '../kernels/launch.js';
import { defineKernel, isHardwareGpu } from '../kernels/variants.js';
import { GRAD, TRANS, type OpCheck } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { composite, op, savingOp } from './record.js';
import { floating } from './checks.js';
import { checkNCHW, pair, windowGeometry, type Padding, type Pair, type Window } from './window.js';
import { mean } from './reduce.js';
import { cast } from './slicing.js';

export interface Pool2dOptions { stride?: Pair; padding?: Padding }

interface Geometry extends Window { planes: number; H: number; W: number; KH: number; KW: number }

function geometry(x: Tensor, kernel: Pair, o: Pool2dOptions, op: string): Geometry {
  floating(x, op); checkNCHW(x, op);
  const [KH, KW] = pair(kernel, 'kernel size', op);
  const g = windowGeometry(x.shape, KH, KW, o.stride ?? kernel, o.padding ?? 'valid', op);
  if (g.pt >= KH || g.pb >= KH || g.pl >= KW || g.pr >= KW) throw new Error(`medgrad: ${op}: padding must be smaller than the ${KH}x${KW} window`);
  return { ...g, planes: x.shape[0]! * x.shape[1]!, H: x.shape[2]!, W: x.shape[3]!, KH, KW };
}

const params = (g: Geometry, phase = 0) => packParams([g.planes, g.H, g.W, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, phase]);

type Kind = { kind: 'max' | 'avg' };
// exact: the float-quotient divisions of the faster variants (div_u in pool.wgsl) are exact for
// these sizes (quotients below 2^22, indices below 2^31); larger tensors take 'grid' / 'gather'.
// half: float16 storage (the forward variants of pool.wgsl and the gathering backward ones have float16 forms).
type Shape = Kind & { W: number; pl: number; KW: number; sw: number; exact: boolean; half?: boolean };
/** Rows of whole vec4s from the first column, with the 4 windows of a run within 16 columns. */
const vec4Rows = (s: Shape) => s.exact && s.W % 4 === 0 && s.pl === 0 && 3 * s.sw + s.KW <= 16;
const exactDivisions = (x: Tensor, g: Geometry): boolean => g.planes * Math.max(g.H, g.OH) < 2 ** 22 && x.size < 2 ** 31;
const POOL = defineKernel<Shape>({
  name: 'pool.forward',
  variants: [
    // 4 x ROWS outputs, each input row loaded once for all of them (pool-rows.wgsl).
    { name: 'rows4', family: 'pool-rows', entry: 'pool_fwd_rows', constants: { ROWS: 4 }, serves: vec4Rows },
    { name: 'rows2', family: 'pool-rows', entry: 'pool_fwd_rows', constants: { ROWS: 2 }, serves: vec4Rows },
    { name: 'vec4', family: 'pool', entry: 'pool_fwd_vec4', serves: vec4Rows, half: true },
    { name: 'run4', family: 'pool', entry: 'pool_fwd_run', constants: { RUN: 4 }, serves: (s) => s.exact, half: true },
    { name: 'run16', family: 'pool', entry: 'pool_fwd_run', constants: { RUN: 16 }, serves: (s) => s.exact, half: true },
    { name: 'grid', family: 'pool', entry: 'pool_fwd', half: true },
  ],
  // On lavapipe the shared rows pay for max (9 loads and stores per output instead of 11, and
  // the maximum's search without per-element index arithmetic); a sum is cheap enough that
  // 'vec4' is as fast and 'rows' slower.
  prefer: (s, vs) => vs.find((v) => s.kind === 'max' || v.family !== 'pool-rows') ?? vs[0]!,
});
const POOL_BACKWARD = defineKernel<Kind & { H: number; W: number; planes: number; sh: number; exact: boolean; half?: boolean }>({
  name: 'pool.backward',
  variants: [
    // The plane walk zeroing in vec4 (planes of a multiple of 4 values).
    { name: 'plane4', family: 'pool-rows', entry: 'pool_bwd_plane4', serves: (s) => (s.H * s.W) % 4 === 0 },
    { name: 'plane', family: 'pool', entry: 'pool_bwd_plane' },
    // Blocks of sh input rows x 4 columns, the window compiled in (pool-rows.wgsl).
    { name: 'rows', family: 'pool-rows', entry: 'pool_bwd_rows', serves: (s) => s.exact && s.W % 4 === 0 && s.sh <= 4 },
    { name: 'phases', family: 'pool', entry: 'pool_bwd_phase', serves: (s) => s.exact },
    { name: 'vec4', family: 'pool', entry: 'pool_bwd_vec4', serves: (s) => s.exact && s.W % 4 === 0, half: true },
    { name: 'gather', family: 'pool', entry: 'pool_bwd', half: true },
  ],
  // 'plane' runs one invocation per plane: it needs planes for several workgroups of lanes, and
  // a CPU's few wide lanes (on a GPU a serial walk per plane leaves most of the card idle). An
  // average's walk adds every window's every input: the 'rows' gather goes first where it runs.
  prefer: (s, vs, caps) => (s.kind === 'avg' ? vs.find((v) => v.name === 'rows') : undefined)
    ?? vs.find((v) => !v.name.startsWith('plane') || (s.planes >= PLANE_WALK_MIN_PLANES && !isHardwareGpu(caps))) ?? vs[0]!,
});
/** Fewest planes for which the one-invocation-per-plane backward keeps the device busy. */
const PLANE_WALK_MIN_PLANES = 256;

const describe = (op: string, x: Tensor, g: Geometry) => `${op} ${fmt(x.shape)} k${g.KH}x${g.KW} s${g.sh}x${g.sw}`;

function forward(kind: 'max' | 'avg', op: string, x: Tensor, g: Geometry, buffers: Record<string, GPUBuffer>, n: number): void {
  const rt = runtime();
  const shape: Shape = { kind, W: g.W, pl: g.pl, KW: g.KW, sw: g.sw, exact: exactDivisions(x, g), ...(x.dtype === 'float16' && { half: true }) };
  const OP = rt.shaderCode('pool', kind.toUpperCase());
  // 'vec4' and 'rows' are compiled for the window and strides; the others take them from the parameters.
  const { variant, kernel } = rt.select(POOL, shape, (v): Record<string, number> => (v.family === 'pool-rows' ? { OP, ...compiledWindow(g) }
    : v.name === 'vec4' ? { OP, SKH: g.KH, SKW: g.KW, SSW: g.sw } : { OP }));
  // 'rows' runs one invocation per 4 x ROWS outputs, 'run' and 'vec4' one per RUN (4) outputs of a row.
  const rows = variant.family === 'pool-rows' ? variant.constants!.ROWS! : 1;
  const run = variant.name === 'vec4' || variant.family === 'pool-rows' ? 4 : variant.constants?.RUN;
  rt.dispatch(kernel, {
    op, label: describe(op, x, g), params: params(g), buffers: { ...buffers, x4: x.buffer },
    workgroups: gridFor(run ? g.planes * Math.ceil(g.OH / rows) * Math.ceil(g.OW / run) : n, kernel), flops: n * g.KH * g.KW, bytes: x.nbytes + 4 * n,
  });
}

/** pool-rows.wgsl's compiled window; CLIPW when the last output's window passes the row's end. */
const compiledWindow = (g: Geometry) => ({ SKH: g.KH, SKW: g.KW, SSH: g.sh, SSW: g.sw, PT: g.pt, CLIPW: (g.OW - 1) * g.sw - g.pl + g.KW > g.W ? 1 : 0 });

function backward(kind: 'max' | 'avg', op: string, x: Tensor, g: Geometry, buffers: Record<string, GPUBuffer>): Tensor {
  const rt = runtime();
  const dx = empty(x.shape, x.dtype);
  const OP = rt.shaderCode('pool', kind.toUpperCase());
  const { variant, kernel } = rt.select(POOL_BACKWARD, { kind, H: g.H, W: g.W, planes: g.planes, sh: g.sh, exact: exactDivisions(x, g), ...(x.dtype === 'float16' && { half: true }) },
    (v): Record<string, number> => (v.name === 'rows' ? { OP, SKH: g.KH, SKW: g.KW, SSH: g.sh, SSW: g.sw } : { OP }));
  const n = g.planes * g.OH * g.OW;
  if (variant.name !== 'phases') {
    const invocations = variant.name === 'rows' ? g.planes * Math.ceil((g.H + g.pt) / g.sh) * (g.W / 4)
      : variant.name === 'vec4' ? x.size / 4 : variant.name.startsWith('plane') ? g.planes : x.size;
    const vec4 = variant.name === 'vec4' || variant.name === 'rows' || variant.name === 'plane4';
    rt.dispatch(kernel, { op, label: describe(op, x, g), params: params(g), buffers: { ...buffers, [vec4 ? 'dx4' : 'dx']: dx.buffer }, workgroups: gridFor(invocations, kernel), flops: n, bytes: x.nbytes + 8 * n });
    return dx;
  }
  if (x.size % 4 === 0) {
    const zero = rt.kernel('pool', 'pool_zero4');
    rt.dispatch(zero, { op, label: `${describe(op, x, g)} zero`, params: params(g), buffers: { dx4: dx.buffer }, workgroups: gridFor(x.size / 4, zero), bytes: x.nbytes });
  } else {
    fillKernel(dx, 0);
  }
  const [P, Q] = [Math.ceil(g.KH / g.sh), Math.ceil(g.KW / g.sw)];
  for (let a = 0; a < Math.min(P, g.OH); a++) {
    for (let b = 0; b < Math.min(Q, g.OW); b++) {
      const rows = g.planes * Math.ceil((g.OH - a) / P); // an invocation per row of the phase
      rt.dispatch(kernel, {
        op, label: `${describe(op, x, g)} phase ${a},${b}`, params: params(g, a * Q + b), buffers: { ...buffers, dx: dx.buffer },
        workgroups: gridFor(rows, kernel), flops: n / (P * Q), bytes: (16 * n) / (P * Q),
      });
    }
  }
  return dx;
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
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW], x.dtype);
    const idx = empty(y.shape, 'int32');
    forward('max', 'maxPool2d', x, g, { x: x.buffer, y: y.buffer, idx: idx.buffer }, y.size);
    return [y, idx];
  },
  backward: (gy: Tensor, _y: Tensor, idx: Tensor, x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Grad => {
    const g = geometry(x, kernel, o, 'maxPool2d');
    if (gy.dtype !== x.dtype) gy = cast(gy, x.dtype); // the kernels read dy in x's storage type
    return [backward('max', 'maxPool2d.backward', x, g, { dy: gy.buffer, arg: idx.buffer })];
  },
});

/** Average over the real (unpadded) inputs of each window. */
export const avgPool2d: (x: Tensor, kernel: Pair, options?: Pool2dOptions) => Tensor = op({
  name: 'avgPool2d', kind: 'pool', method: true, check: poolCheck('avg'),
  forward: (x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Tensor => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    const y = empty([x.shape[0]!, x.shape[1]!, g.OH, g.OW], x.dtype);
    const unused = empty([1], 'int32'); // the shared kernel's index output, not written for averages
    forward('avg', 'avgPool2d', x, g, { x: x.buffer, y: y.buffer, idx: unused.buffer }, y.size);
    unused.dispose();
    return y;
  },
  backward: (gy: Tensor, _y: Tensor, x: Tensor, kernel: Pair, o: Pool2dOptions = {}): Grad => {
    const g = geometry(x, kernel, o, 'avgPool2d');
    if (gy.dtype !== x.dtype) gy = cast(gy, x.dtype); // the kernels read dy in x's storage type
    return [backward('avg', 'avgPool2d.backward', x, g, { dy: gy.buffer, arg: gy.buffer })];
  },
});

/** Mean over H and W: [N, C, H, W] -> [N, C] (keepdims gives [N, C, 1, 1]). */
export const globalAvgPool2d = composite('globalAvgPool2d', (x: Tensor, keepdims = false): Tensor => {
  checkNCHW(x, 'globalAvgPool2d');
  return mean(x, [2, 3], keepdims);
});
