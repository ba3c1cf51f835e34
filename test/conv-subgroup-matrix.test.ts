// Tensor-core convolution (issue 14): conv2d.forward's `subgroup-matrix-*` variants, the implicit
// GEMM of conv2d.wgsl's operands (weights x im2col, per image) on gemm-tile.wgsl's tiling.
// - Always: the registry offers them only with the feature, an f16 x f16 -> f32 configuration
//   and 'medium' float32 matmul precision; its table rule takes them for large layers on a GPU
//   with tensor cores and never on lavapipe or for float16 storage.
// - Always (shader-f16): the tiling's emulation, run through the convolution's own launch, against
//   float64 (im2col times the weights) within the f16 tolerance, on odd sizes, strides, padding,
//   batch 1, channels across tiles, NaN and f16 overflow, weights read transposed and flipped
//   (the input gradient's layout); the epilogue against float64 applied to its plain output.
// - Where the adapter has the feature: the real variants on the same cases.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { VariantPolicy } from '../engine/kernels/variants.js';
import { CONV_ALGORITHM, CONV_FORWARD, CONV_SM_EMULATED, convGeometry, direct, type Geometry, type WeightLayout } from '../engine/ops/conv.js';
import { SM_VARIANT, SM_VARIANT_SMALL } from '../engine/ops/matmul-subgroup-matrix.js';
import * as R from '../engine/reference/float64.js';
import { f16ConvMismatch } from '../engine/reference/f16.js';
import { gpu, Rng, toTensor } from './helpers/setup.js';
import { h100, lavapipe } from './helpers/tensor-cores.js';

await gpu();
E.setFloat32MatmulPrecision('medium');
afterEach(() => { for (const k of [CONV_FORWARD.name, CONV_SM_EMULATED.name]) E.getEngine().policy.force(k, null); });

const EMULATED = 'subgroup-matrix-emulated';
const REAL = [SM_VARIANT, SM_VARIANT_SMALL];
/** Square layers with same padding: a ResNet-50 stage-2 3x3 at batch 8, and a wide deep one at batch 32. */
const geometry = (N: number, Cin: number, H: number, Cout: number, K: number, s = 1): Geometry => {
  const OH = Math.floor((H + 2 * Math.floor(K / 2) - K) / s) + 1;
  return { N, Cin, H, W: H, Cout, KH: K, KW: K, sh: s, sw: s, pt: K >> 1, pb: K >> 1, pl: K >> 1, pr: K >> 1, OH, OW: OH };
};
const big = geometry(8, 64, 56, 64, 3), deep = geometry(32, 256, 28, 256, 3);

describe('the registry and the tensor-core convolution', () => {
  const names = (caps = h100, g = big) => new VariantPolicy(caps).candidates(CONV_FORWARD, g).map((v) => v.name);
  it('is offered with the feature and \'medium\' precision only, never for float16 storage', () => {
    expect(names()).toEqual(expect.arrayContaining(REAL));
    for (const v of REAL) {
      expect(names(lavapipe)).not.toContain(v);
      expect(names({ ...h100, features: new Set(['subgroups', 'shader-f16']) })).not.toContain(v);
      expect(names(h100, { ...big, half: true })).not.toContain(v);
    }
    E.setFloat32MatmulPrecision('highest');
    try { for (const v of REAL) expect(names()).not.toContain(v); } finally { E.setFloat32MatmulPrecision('medium'); }
  });
  it('the table rule takes it for large layers on a GPU with tensor cores, else keeps the f32 kernels', () => {
    const p = new VariantPolicy(h100);
    expect(p.pick(CONV_FORWARD, big).name).toBe(SM_VARIANT_SMALL);
    expect(p.pick(CONV_FORWARD, deep).name).toBe(SM_VARIANT);
    // Few channels, few pixels per image, or a shallow reduction: the f32 tiles.
    for (const g of [geometry(8, 3, 224, 32, 3), geometry(8, 64, 56, 32, 3), geometry(64, 512, 7, 512, 3), geometry(8, 16, 56, 64, 3)]) {
      expect(REAL, JSON.stringify(g)).not.toContain(p.pick(CONV_FORWARD, g).name);
    }
    expect(REAL).not.toContain(new VariantPolicy(lavapipe).pick(CONV_FORWARD, big).name);
    expect(CONV_FORWARD.variants.map((v) => v.name)).not.toContain(EMULATED);
    expect(CONV_SM_EMULATED.bucket).toBeUndefined();
  });
  it('a 3x3 layer the tensor cores take runs as one GEMM on them, not as Winograd\'s float32 passes', () => {
    expect(new VariantPolicy(h100).pick(CONV_ALGORITHM, big).name).toBe('direct');
    expect(new VariantPolicy(lavapipe).pick(CONV_ALGORITHM, big).name).toBe('winograd-f4');
  });
  it('a policy follows the precision setting when it changes, after its first picks', () => {
    const p = new VariantPolicy(h100);
    expect(p.pick(CONV_FORWARD, big).name).toBe(SM_VARIANT_SMALL);
    E.setFloat32MatmulPrecision('highest');
    try {
      expect(REAL).not.toContain(p.pick(CONV_FORWARD, big).name);
      expect(p.pick(CONV_ALGORITHM, big).name).toBe('winograd-f4');
    } finally { E.setFloat32MatmulPrecision('medium'); }
    expect(p.pick(CONV_FORWARD, big).name).toBe(SM_VARIANT_SMALL);
  });
});

interface Case { x: [number, number, number, number]; w: [number, number, number, number]; stride?: number; padding?: number | 'same'; layout?: 'transposed-flipped' }
const CASES: Case[] = [
  { x: [1, 3, 9, 11], w: [5, 3, 3, 3], padding: 1 },
  { x: [3, 4, 10, 7], w: [17, 4, 5, 5], stride: 2, padding: 2 },
  { x: [2, 6, 8, 8], w: [16, 6, 3, 3] }, // whole 16 x 16 tiles with 16-byte rows: the fragment store
  { x: [1, 8, 16, 16], w: [32, 8, 1, 1] },
  { x: [2, 3, 7, 7], w: [8, 3, 7, 7], padding: 'same' },
  { x: [2, 5, 9, 6], w: [7, 5, 3, 2], stride: 2, padding: 1, layout: 'transposed-flipped' },
];
const what = (c: Case) => `[${c.x}] * [${c.w}] s${c.stride ?? 1} p${c.padding ?? 0}${c.layout ? ` (weights ${c.layout})` : ''}`;

/**
 * The weights as stored and the strides that read them back as [Cout, Cin, KH, KW]: plain, or
 * as the input gradient reads them ([Cin, Cout, KH, KW], flipped; negative strides wrap in u32).
 */
function stored(w: R.Arr, layout: Case['layout']): { data: R.Arr; wl?: WeightLayout } {
  if (!layout) return { data: w };
  const [Co, C, KH, KW] = w.shape as [number, number, number, number];
  const t = R.permute(w, [1, 0, 2, 3]);
  const flipped = R.arr(t.shape, t.data.map((_, i) => t.data[i - (i % (KH * KW)) + (KH * KW - 1 - (i % (KH * KW)))]!));
  return { data: flipped, wl: [KH * KW, Co * KH * KW, -KW, -1, (KH - 1) * KW + KW - 1] };
}

/** Runs `variant` of `kernel` through conv2d's launch on random data (a NaN, an f16 overflow) and checks each image against float64. */
async function check(kernel: typeof CONV_FORWARD, variant: string, c: Case): Promise<void> {
  const r = new Rng(c.x.reduce((a, b) => a * 31 + b, 7) + c.w.reduce((a, b) => a * 17 + b, 3));
  const x = r.arr(c.x, -1, 1), w = r.arr(c.w, -1, 1);
  x.data[5] = NaN; x.data[x.data.length - 3] = 7e4; // past f16's range: +-inf in the products
  const { data, wl } = stored(w, c.layout);
  const xt = toTensor(x), wt = toTensor(data), logical = toTensor(w);
  const g = convGeometry(xt, logical, undefined, { stride: c.stride ?? 1, padding: c.padding ?? 0 });
  E.getEngine().policy.force(kernel.name, variant);
  expect(E.getEngine().policy.pick(kernel, g).name, `${kernel.name} runs ${variant} here`).toBe(variant);
  const y = direct(xt, wt, {}, g, wl, 'conv2d', kernel);
  expect(f16ConvMismatch(await y.data(), x, w, g.sh, g.sw, [g.pt, g.pb, g.pl, g.pr], `${variant} ${what(c)}`)).toBeNull();
  E.dispose([xt, wt, logical, y]);
}

/** The epilogue (scale, shift, residual, ReLU) against float64 applied to the same variant's plain output. */
async function checkEpilogue(kernel: typeof CONV_FORWARD, variant: string): Promise<void> {
  const r = new Rng(11);
  const x = r.arr([2, 6, 8, 8], -1, 1), w = r.arr([16, 6, 3, 3], -1, 1);
  const Cout = 16, P = 64;
  const affine = r.arr([2, Cout], -1, 1), res = r.arr([2, Cout, 8, 8], -1, 1);
  E.getEngine().policy.force(kernel.name, variant);
  const [xt, wt, at, rt] = [x, w, affine, res].map((v) => toTensor(v)) as [E.Tensor, E.Tensor, E.Tensor, E.Tensor];
  const g = convGeometry(xt, wt, undefined, { padding: 1 });
  const plain = await direct(xt, wt, {}, g, undefined, 'conv2d', kernel).data();
  const fused = await direct(xt, wt, { affine: at, residual: rt, relu: true }, g, undefined, 'conv2d', kernel).data();
  const want = R.arr([2, Cout, 8, 8], Array.from(plain, (v, i) => {
    const co = Math.floor(i / P) % Cout;
    return Math.max(0, v * affine.data[Cout + co]! + affine.data[co]! + res.data[i]!);
  }));
  let worst = 0;
  want.data.forEach((e, i) => { worst = Math.max(worst, Math.abs(fused[i]! - e) / (1e-6 + 1e-6 * Math.abs(e))); });
  expect(worst, `${variant}: epilogue against float64 of its plain output (in units of the float32 bound)`).toBeLessThanOrEqual(1);
  E.dispose([xt, wt, at, rt]);
}

const hasF16 = () => E.getDevice().features.has('shader-f16');
const hasTensorCores = () => E.getEngine().policy.candidates(CONV_FORWARD, big).some((v) => v.name === SM_VARIANT);

describe('the tensor-core convolution\'s tiling on plain arrays (subgroup-matrix-emulated; needs shader-f16)', () => {
  for (const c of CASES) it.skipIf(!hasF16())(`${what(c)} against float64 within the f16 tolerance`, () => check(CONV_SM_EMULATED, EMULATED, c));
  it.skipIf(!hasF16())('applies the epilogue (scale, shift, residual, ReLU) to every element', () => checkEpilogue(CONV_SM_EMULATED, EMULATED));
});

describe(`tensor-core convolution (${REAL.join(', ')}; skipped: this adapter has no tensor cores)`, () => {
  for (const v of REAL) {
    for (const c of [...CASES, { x: [4, 64, 20, 20], w: [96, 64, 3, 3], padding: 1 } as Case]) it.skipIf(!hasTensorCores())(`${v} ${what(c)} against float64 within the f16 tolerance`, () => check(CONV_FORWARD, v, c));
    it.skipIf(!hasTensorCores())(`${v} applies the epilogue`, () => checkEpilogue(CONV_FORWARD, v));
  }
});
