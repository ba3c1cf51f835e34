// conv2d on NCHW activations and [Cout, Cin, KH, KW] weights (conv2d.wgsl): forward with an
// epilogue fused (bias; residual and ReLU for conv-fused.ts's folded conv-BN layers), input gradient through the same kernel (transposed, flipped weights), weight
// gradient as split-K partial sums reduced by reduce.wgsl, bias gradient as per-channel sums.
// Stride-1 3x3 layers may instead run Winograd's algorithm (conv-winograd.ts), chosen by policy.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { filled, fillKernel, packParams, reduceRowsKernel, stridedCopy } from '../kernels/launch.js';
import { defineKernel, pow2, supportedVariants, type Capabilities, type Choice, type KernelDef } from '../kernels/variants.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { op } from './record.js';
import { floating } from './checks.js';
import { checkNCHW, windowGeometry, type Padding, type Pair, type Window } from './window.js';
import { cast, slice } from './slicing.js';
import { channelSums } from './norm.js';
import { preferAlgorithm, winogradForward, winogradServes, winogradWeightGrad, type WinogradTile } from './conv-winograd.js';
import { cropTaps, uncropWeightGrad, type Stored } from './conv-crop.js';
import { epilogueBias, epilogueCode, type Epilogue } from './conv-epilogue.js';
import { preferTiledConv, preferTiledWeightGrad, tiledConvGrid, tiledConvVariants, tiledWeightGradVariants, weightGradBlocks } from './conv-tiled.js';
import { CONV_SM_FAMILY, emulatedSubgroupMatrixVariant, isSubgroupMatrix, subgroupMatrixConstants } from './matmul-subgroup-matrix.js';

export type { Epilogue } from './conv-epilogue.js';

export interface Conv2dOptions { stride?: Pair; padding?: Padding }

/**
 * `half`: float16 storage (x, w, bias and y; the weight gradient is float32). `flops`: what the
 * layer's dispatches report, where not its own kernel's count (a cropped layer reports its full
 * kernel's, as FLOP counts conventionally do).
 */
export interface Geometry extends Window { N: number; Cin: number; H: number; W: number; Cout: number; KH: number; KW: number; half?: boolean; flops?: number }

export function convGeometry(x: Tensor, w: Tensor, b: Tensor | undefined, o: Conv2dOptions): Geometry {
  floating(x, 'conv2d', 'input'); floating(w, 'conv2d', 'weight');
  if (w.dtype !== x.dtype || (b && b.dtype !== x.dtype)) throw new Error(`medgrad: conv2d: input ${fmt(x.shape)} is ${x.dtype} but weight${b ? ' / bias' : ''} ${w.dtype}${b ? ` / ${b.dtype}` : ''}; cast them to one dtype`);
  checkNCHW(x, 'conv2d');
  if (w.rank !== 4) throw new Error(`medgrad: conv2d: weight must be [Cout, Cin, KH, KW], got shape ${fmt(w.shape)}`);
  const [N, Cin, H, W] = x.shape as [number, number, number, number];
  const [Cout, wc, KH, KW] = w.shape as [number, number, number, number];
  if (wc !== Cin) throw new Error(`medgrad: conv2d: input ${fmt(x.shape)} has ${Cin} channels but weight ${fmt(w.shape)} expects ${wc}`);
  if (b !== undefined && (floating(b, 'conv2d', 'bias').rank !== 1 || b.shape[0] !== Cout)) {
    throw new Error(`medgrad: conv2d: bias of shape ${fmt(b.shape)} does not match ${Cout} output channels`);
  }
  return { N, Cin, H, W, Cout, KH, KW, ...(x.dtype === 'float16' && { half: true }), ...windowGeometry(x.shape, KH, KW, o.stride ?? 1, o.padding ?? 'valid', 'conv2d') };
}

/** Weight strides (co, ci, kh, kw) and offset as conv_fwd reads them; defaults: [Cout, Cin, KH, KW] contiguous. */
export type WeightLayout = [number, number, number, number, number];
const plainLayout = (g: Geometry): WeightLayout => [g.Cin * g.KH * g.KW, g.KH * g.KW, g.KW, 1, 0];

function params(g: Geometry, epilogue: number, splits = 1, perSplit = 0, wl: WeightLayout = plainLayout(g)): ArrayBuffer {
  return packParams([g.N, g.Cin, g.H, g.W, g.Cout, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, epilogue, splits, perSplit, ...wl, 0, 0, 0]);
}

/** The FLOPs a layer's dispatches report: the direct convolution's, whichever algorithm runs it. */
export const convFlops = (g: Geometry): number => g.flops ?? 2 * g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW;
const bucketOf = (g: Geometry) => `cin${pow2(g.Cin)}.cout${pow2(g.Cout)}.k${g.KH}x${g.KW}.s${g.sh}.px${pow2(g.N * g.OH * g.OW)}`;
const desc = (g: Geometry) => `[${g.N}, ${g.Cin}, ${g.H}, ${g.W}] * [${g.Cout}, ${g.Cin}, ${g.KH}, ${g.KW}] s${g.sh}x${g.sw} p${g.pt},${g.pb},${g.pl},${g.pr}`;

/**
 * The direct convolution (forward and, through weight strides, input gradient). Its variants
 * compute 4, 8 or 16 output channels per invocation (the RB override); the table rule picks the
 * smallest block that covers the layer's channels, so an RGB input's gradient (3 channels) does
 * not idle three quarters of a 16-channel block.
 */
export const CONV_FORWARD = defineKernel<Geometry>({
  name: 'conv2d.forward',
  variants: [...[16, 8, 4].map((rb) => ({ name: `direct-rb${rb}`, family: 'conv2d', entry: 'conv_fwd', constants: { RB: rb }, half: true })), ...tiledConvVariants<Geometry>()],
  prefer: (g, c, caps) => preferTiledConv(g, c, caps) ?? c.find((v) => v.constants!.RB === (g.Cout <= 4 ? 4 : g.Cout <= 8 ? 8 : 16)) ?? c[0]!,
  bucket: bucketOf,
  sample: (g) => {
    const x = filled([g.N, g.Cin, g.H, g.W], 0.5);
    const w = filled([g.Cout, g.Cin, g.KH, g.KW], 0.25);
    return { run: () => direct(x, w, {}, g).dispose(), dispose: () => { x.dispose(); w.dispose(); } };
  },
});

/** Whether CONV_FORWARD's table rule would put g on the adapter's tensor cores (asked of the rule itself). */
function onTensorCores(g: Geometry, caps: Capabilities): boolean {
  const supported = supportedVariants(CONV_FORWARD, caps);
  // Cached per adapter: without tensor-core variants (lavapipe, float16 storage) no rule is run.
  if (g.half || !supported.some(isSubgroupMatrix)) return false;
  return isSubgroupMatrix(CONV_FORWARD.prefer!(g, supported.filter((v) => v.serves?.(g) ?? true), caps));
}

/** The tensor-core tiling on plain arrays: a test kernel (no bucket, never tuned; run through `direct`). */
export const CONV_SM_EMULATED = defineKernel<Geometry>({ name: 'conv2d.subgroupMatrixEmulated', variants: [emulatedSubgroupMatrixVariant<Geometry>(CONV_SM_FAMILY)] });

/**
 * Algorithm-level choices (several passes each): the direct kernels above and below, or Winograd
 * F(2x2,3x3) / F(4x4,3x3) for stride-1 3x3 layers (conv-winograd.ts). One choice serves the
 * forward and the input gradient (a stride-1 convolution of dy), another the weight gradient.
 */
const tiles: WinogradTile[] = [2, 4];
type Algorithm<F> = Choice<Geometry> & { run: F };
type ForwardFn = (x: Tensor, w: Tensor, e: Epilogue, g: Geometry, wl: WeightLayout, op: string) => Tensor;
export const CONV_ALGORITHM = defineKernel<Geometry, Algorithm<ForwardFn>>({
  name: 'conv2d.algorithm',
  variants: [{ name: 'direct', run: direct, half: true },
    ...tiles.map((m) => ({ name: `winograd-f${m}`, serves: (g: Geometry) => winogradServes(g, m), run: ((x, w, e, g, wl, op) => winogradForward(x, w, e, g, wl, op, m)) as ForwardFn }))],
  // A layer the tensor cores take runs as one implicit GEMM on them, not as Winograd's f32 passes.
  prefer: (g, c, caps) => c.find((v) => v.name === (onTensorCores(g, caps) ? 'direct' : preferAlgorithm(g))) ?? c[0]!,
  bucket: bucketOf,
  sample: (g) => {
    const x = filled([g.N, g.Cin, g.H, g.W], 0.5);
    const w = filled([g.Cout, g.Cin, g.KH, g.KW], 0.25);
    return { run: () => pickForward(x, w, {}, g).dispose(), dispose: () => { x.dispose(); w.dispose(); } };
  },
});

type WeightGradFn = (dy: Tensor, x: Tensor, g: Geometry) => Tensor;
export const CONV_WEIGHT_GRAD_ALGORITHM = defineKernel<Geometry, Algorithm<WeightGradFn>>({
  name: 'conv2d.weightGrad.algorithm',
  variants: [{ name: 'direct', run: directWeightGrad, half: true },
    ...tiles.map((m) => ({ name: `winograd-f${m}`, serves: (g: Geometry) => winogradServes(g, m), run: ((dy, x, g) => winogradWeightGrad(dy, x, g, 'conv2d.dw', m)) as WeightGradFn }))],
  prefer: (g, c) => c.find((v) => v.name === preferAlgorithm(g)) ?? c[0]!,
  bucket: bucketOf,
  sample: (g) => {
    const dy = filled([g.N, g.Cout, g.OH, g.OW], 0.5);
    const x = filled([g.N, g.Cin, g.H, g.W], 0.25);
    return { run: () => weightGrad(dy, x, g).dispose(), dispose: () => { dy.dispose(); x.dispose(); } };
  },
});

/** The forward convolution with epilogue e, by the algorithm the policy picks for g. */
function pickForward(x: Tensor, w: Tensor, e: Epilogue, g: Geometry, wl = plainLayout(g), op = 'conv2d'): Tensor {
  return runtime().policy.pick(CONV_ALGORITHM, g).run(x, w, e, g, wl, op);
}

/**
 * The forward convolution by CONV_FORWARD's pick (or `kernel`'s: a test runs the tensor-core
 * tiling's emulation, CONV_SM_EMULATED, through the same launch).
 */
export function direct(x: Tensor, w: Tensor, e: Epilogue, g: Geometry, wl = plainLayout(g), op = 'conv2d', kernel: KernelDef<Geometry> = CONV_FORWARD): Tensor {
  const y = empty([g.N, g.Cout, g.OH, g.OW], x.dtype);
  const rt = runtime();
  rt.launch(kernel, g, (k, v) => {
    const [wx, wy] = k.workgroupSize;
    return {
      op, label: `${op} ${desc(g)}`, params: params(g, epilogueCode('conv2d', e), 1, 0, wl),
      buffers: { x: x.buffer, w: w.buffer, bias: (epilogueBias(e) ?? w).buffer, res: (e.residual ?? x).buffer, c: y.buffer },
      workgroups: v.family === 'conv2d' ? [Math.ceil((g.N * g.OH * Math.ceil(g.OW / k.consts.C!)) / wx), Math.ceil(g.Cout / k.consts.RB! / wy)] : tiledConvGrid(g, k, v),
      flops: convFlops(g), bytes: x.nbytes + w.nbytes + y.nbytes,
    };
  }, subgroupMatrixConstants(rt.device));
  return y;
}

/**
 * One axis of the input gradient's phase r (inputs i = s q + r, q < count): only the taps
 * k = k0, k0 + s, ... reach it, so it is a stride-1 correlation of dy (cropped by `crop`, padded
 * by `pad`) with those taps reversed. taps 0: no output of the layer reads these inputs.
 */
function phase(r: number, s: number, p: number, K: number, size: number, outSize: number) {
  const k0 = (r + p) % s, taps = k0 < K ? Math.ceil((K - k0) / s) : 0;
  const pad = taps - 1 - (r + p - k0) / s, crop = Math.max(0, -pad);
  return { k0, taps: crop >= outSize ? 0 : taps, pad: Math.max(0, pad), crop, count: r < size ? Math.ceil((size - r) / s) : 0 };
}

/**
 * dx is a convolution of dy with the kernel transposed (Cin <-> Cout) and flipped, which the
 * forward kernels read through weight strides (one kernel serves forward and input gradient).
 * With a stride s, dx splits into s x s phases, each a stride-1 convolution with a sub-kernel
 * (phase()), so no work goes to the zeros between dy's values; the phases are interleaved
 * into dx, and phases no tap reaches (a 1x1 kernel's odd rows, say) stay zero.
 */
function inputGrad(dy: Tensor, w: Tensor, g: Geometry, stored: Stored = { KH: g.KH, KW: g.KW, off: 0 }): Tensor {
  const khw = stored.KH * stored.KW;
  const rows = Array.from({ length: g.sh }, (_, r) => phase(r, g.sh, g.pt, g.KH, g.H, g.OH));
  const cols = Array.from({ length: g.sw }, (_, r) => phase(r, g.sw, g.pl, g.KW, g.W, g.OW));
  const conv = (src: Tensor, a: ReturnType<typeof phase>, b: ReturnType<typeof phase>) => tidy(() => {
    const input = a.crop || b.crop ? slice(src, [0, 0, a.crop, b.crop]) : src;
    const t: Geometry = {
      ...g, Cin: g.Cout, Cout: g.Cin, H: g.OH - a.crop, W: g.OW - b.crop, OH: a.count, OW: b.count, KH: a.taps, KW: b.taps,
      sh: 1, sw: 1, pt: a.pad, pb: 0, pl: b.pad, pr: 0, flops: undefined,
    };
    const off = stored.off + (a.k0 + g.sh * (a.taps - 1)) * stored.KW + b.k0 + g.sw * (b.taps - 1);
    return pickForward(input, w, {}, t, [khw, g.Cin * khw, -g.sh * stored.KW, -g.sw, off], 'conv2d.dx');
  });
  if (g.sh === 1 && g.sw === 1) return rows[0]!.taps && cols[0]!.taps ? conv(dy, rows[0]!, cols[0]!) : fillKernel(empty([g.N, g.Cin, g.H, g.W], dy.dtype), 0);
  const dx = empty([g.N, g.Cin, g.H, g.W], dy.dtype);
  if (rows.some((a) => a.count && !a.taps) || cols.some((b) => b.count && !b.taps)) fillKernel(dx, 0);
  rows.forEach((a, rh) => cols.forEach((b, rw) => {
    if (!a.taps || !b.taps || !a.count || !b.count) return;
    const part = conv(dy, a, b);
    stridedCopy(part, dx, part.shape, part.strides, 0, [g.Cin * g.H * g.W, g.H * g.W, g.sh * g.W, g.sw], rh * g.W + rw, 'conv2d.dx');
    part.dispose();
  }));
  return dx;
}

/** The weight gradient as split-K partial sums over slices of the pixels (direct, or tiled for GPUs). */
export const CONV_WEIGHT_GRAD = defineKernel<Geometry>({
  name: 'conv2d.weightGrad',
  variants: [{ name: 'split-k', family: 'conv2d', entry: 'conv_bwd_weight', half: true }, ...tiledWeightGradVariants<Geometry>()],
  prefer: (g, c, caps) => preferTiledWeightGrad(g, c, caps) ?? c[0]!,
  bucket: bucketOf,
  sample: (g) => {
    const dy = filled([g.N, g.Cout, g.OH, g.OW], 0.5);
    const x = filled([g.N, g.Cin, g.H, g.W], 0.25);
    return { run: () => directWeightGrad(dy, x, g).dispose(), dispose: () => { dy.dispose(); x.dispose(); } };
  },
});

function weightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  return runtime().policy.pick(CONV_WEIGHT_GRAD_ALGORITHM, g).run(dy, x, g);
}

function directWeightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const K = g.Cin * g.KH * g.KW;
  const P = g.N * g.OH * g.OW;
  const rt = runtime();
  const { kernel: k, variant } = rt.select(CONV_WEIGHT_GRAD, g);
  const [bx, by] = weightGradBlocks(g, k, variant.family);
  // Split the pixel reduction so that there are enough independent sums to fill the device,
  // while each still covers enough pixels to amortise the final reduction.
  const blocks = bx * by;
  const splits = Math.min(Math.max(1, Math.min(Math.ceil(P / 256), Math.ceil(4096 / blocks))), rt.maxWorkgroups);
  const perSplit = Math.ceil(P / splits);
  return tidy(() => {
    const partial = empty([g.Cout * K, splits]);
    rt.dispatch(k, {
      op: 'conv2d.dw', label: `conv2d.dw ${desc(g)} (${splits} splits)`, params: params(g, 0, splits, perSplit),
      buffers: { dy: dy.buffer, x: x.buffer, dw: partial.buffer },
      workgroups: [bx, by, splits],
      flops: convFlops(g), bytes: dy.nbytes + x.nbytes + partial.nbytes,
    });
    return reduceRowsKernel(partial, g.Cout * K, splits, 'sum', [g.Cout, g.Cin, g.KH, g.KW]);
  });
}

// The passes as the ops run them: a kernel larger than the map cropped to the taps that meet it
// (conv-crop.ts), read in place; the weight gradient zero at the taps cropped away.

/** y = conv(x, w) with epilogue e (bias, or a folded batch norm, residual and ReLU). */
export function convForward(x: Tensor, w: Tensor, e: Epilogue, g: Geometry, op = 'conv2d'): Tensor {
  const c = cropTaps(g);
  return c ? pickForward(x, w, e, c.g, [g.Cin * g.KH * g.KW, g.KH * g.KW, g.KW, 1, c.off], op) : pickForward(x, w, e, g, undefined, op);
}

/** dL/dx of y = conv(x, w) from dy. */
export function convInputGrad(dy: Tensor, w: Tensor, g: Geometry): Tensor {
  const c = cropTaps(g);
  return inputGrad(dy, w, c ? c.g : g, { KH: g.KH, KW: g.KW, off: c ? c.off : 0 });
}

/** dL/dw of y = conv(x, w) from dy (float32). */
export function convWeightGrad(dy: Tensor, x: Tensor, g: Geometry): Tensor {
  const c = cropTaps(g);
  return c ? tidy(() => uncropWeightGrad(weightGrad(dy, x, c.g), c, [g.Cout, g.Cin, g.KH, g.KW])) : weightGrad(dy, x, g);
}

/**
 * 2-D convolution (cross-correlation, as in PyTorch and Keras) of x [N, Cin, H, W] with
 * w [Cout, Cin, KH, KW], optional bias [Cout]; stride and padding as in Conv2dOptions.
 */
export const conv2d: (x: Tensor, w: Tensor, b?: Tensor, options?: Conv2dOptions) => Tensor = op({
  name: 'conv2d', kind: 'conv', method: true,
  check: {
    tol: { atol: 2e-5, rtol: 1e-5 }, grad: { atol: 5e-5, rtol: 2e-4 },
    cases: (r) => ([
      [[1, 3, 7, 6], [4, 3, 3, 3], 1, 'valid', true], [[2, 2, 6, 7], [3, 2, 3, 3], 2, 'same', false], [[2, 3, 5, 5], [2, 3, 1, 1], 2, 'same', true],
      [[1, 2, 9, 8], [3, 2, 3, 2], [2, 1], [1, 0, 2, 1], true], [[3, 1, 8, 8], [2, 1, 7, 7], 1, 'same', false],
      // Input-gradient phases: padding past the kernel (a cropped dy), a stride above the kernel (rows no tap reaches).
      [[1, 2, 9, 8], [3, 2, 3, 3], 2, [3, 1, 2, 0], true], [[2, 3, 10, 9], [4, 3, 2, 2], 3, 'valid', false],
      // A 5x5 stride-2 layer: its input gradient's phases include 3x3 sub-kernels (Winograd serves them).
      [[1, 2, 11, 11], [3, 2, 5, 5], 2, 'same', false],
      // Kernels larger than the map: taps that only meet padding are cropped away (conv-crop.ts).
      [[2, 3, 2, 2], [4, 3, 7, 7], 1, 'same', true], [[2, 3, 1, 2], [3, 3, 5, 5], 2, [3, 3, 3, 3], false], [[1, 2, 2, 5], [3, 2, 7, 3], 1, [3, 3, 1, 1], true],
    ] as Array<[number[], number[], number | [number, number], Padding, boolean]>).map(([xs, ws, stride, padding, bias]) => ({
      inputs: [r.arr(xs, -1, 1), r.arr(ws, -1, 1), ...(bias ? [r.arr([ws[0]!], -1, 1)] : [])], args: [{ stride, padding }],
      label: `[${xs}] * [${ws}] stride ${JSON.stringify(stride)} padding ${JSON.stringify(padding)}${bias ? ' +bias' : ''}`,
    })),
    run: (f, [x, w, b], [o]) => f(x, w, b, o),
    ref: ([x, w, b], [o]) => {
      const { stride, padding } = o as { stride: number | [number, number]; padding: Padding };
      const [sh, sw] = typeof stride === 'number' ? [stride, stride] : stride;
      const pads = padding === 'same' ? R.tfSamePads(x!.shape[2]!, x!.shape[3]!, w!.shape[2]!, w!.shape[3]!, sh, sw)
        : padding === 'valid' ? [0, 0, 0, 0] : (padding as [number, number, number, number]);
      return R.conv2d(x!, w!, b ?? null, sh, sw, pads as [number, number, number, number]);
    },
  },
  forward: (x: Tensor, w: Tensor, b?: Tensor, options: Conv2dOptions = {}): Tensor => convForward(x, w, { bias: b }, convGeometry(x, w, b, options)),
  backward: (gy: Tensor, _y: Tensor, x: Tensor, w: Tensor, b?: Tensor, options: Conv2dOptions = {}): Grad => {
    const g = convGeometry(x, w, b, options);
    // The kernels read gy in x's storage type (a float32 gradient may reach a float16 layer).
    if (gy.dtype !== x.dtype) gy = cast(gy, x.dtype);
    // An image batch (the first layer's input) usually needs no gradient: skip that kernel.
    const dx = x.requiresGrad ? convInputGrad(gy, w, g) : null;
    const dw = w.requiresGrad ? convWeightGrad(gy, x, g) : null;
    return [dx, dw, b?.requiresGrad ? channelSums(gy) : null];
  },
});

/** Output height and width of conv2d for an input shape, without running it. */
export function conv2dOutputSize(inShape: readonly number[], kernel: readonly [number, number], options: Conv2dOptions = {}): [number, number] {
  const g = windowGeometry(inShape, kernel[0], kernel[1], options.stride ?? 1, options.padding ?? 'valid', 'conv2d');
  return [g.OH, g.OW];
}
