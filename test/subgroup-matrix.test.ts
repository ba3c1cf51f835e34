// Tensor-core matmul (issue 14): the `subgroup-matrix-f16` variant of matmul, on WGSL subgroup
// matrices (Dawn's chromium-experimental-subgroup-matrix; Vulkan cooperative matrices on NVIDIA).
// - Always: the registry never offers or picks it on an adapter without the feature and an
//   f16 x f16 -> f32 configuration, and does pick it for large products on a GPU that has them;
//   the shader parses (Dawn's own parser) and reflects to the bindings the launcher fills.
// - Always: its tiling, run on plain arrays (`subgroup-matrix-emulated`, the one variant of a test
//   kernel), through the registry against float64 with the f16 tolerance (engine/reference/f16.ts).
// - Where the adapter has the feature: the real variant, forced, on the same shapes and larger.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { VariantPolicy, variantFeatures, type Capabilities } from '../engine/kernels/variants.js';
import { integerConstants, reflectable } from '../engine/kernels/compile.js';
import { registerGenerated, shaderSource } from '../engine/kernels/shaders.js';
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { MATMUL, MATMUL_SM_EMULATED, matmulKernel } from '../engine/ops/linalg.js';
import { CONV_FORWARD } from '../engine/ops/conv.js';
import { chooseSubgroupMatrixConfig, CONV_SM_FAMILY, prepareSubgroupMatrix, SM_ENTRY, SM_FAMILY, SM_FEATURE, SM_FRAGMENTS, SM_PAD, SM_TILES, SM_VARIANT, SM_VARIANT_SMALL, workgroupBytes } from '../engine/ops/matmul-subgroup-matrix.js';
import * as R from '../engine/reference/float64.js';
import { gpu, Rng, toTensor } from './helpers/setup.js';
import { f16MatmulMismatch } from '../engine/reference/f16.js';
import { cfg16, h100, lavapipe, limits } from './helpers/tensor-cores.js';

await gpu();
// The variants are offered under 'medium' float32 matmul precision only (one test checks the default).
E.setFloat32MatmulPrecision('medium');
afterEach(() => { for (const k of ['matmul', 'matmul.subgroupMatrixEmulated']) E.getEngine().policy.force(k, null); });

const EMULATED = 'subgroup-matrix-emulated';
const big = { M: 512, N: 512, K: 512, batch: 1, bRowContiguous: true };
const REAL = [SM_VARIANT, SM_VARIANT_SMALL];
const hasTensorCores = (): boolean => E.getEngine().policy.candidates(MATMUL, big).some((v) => v.name === SM_VARIANT);

describe('the registry and the subgroup-matrix variant', () => {
  const offers = (caps: Capabilities, shape = big) => new VariantPolicy(caps).candidates(MATMUL, shape).map((v) => v.name);
  it('init() requests the feature where the adapter has it', () => {
    expect(variantFeatures()).toContain(SM_FEATURE);
  });
  it('never offers or picks it without the feature, without configurations, or without an f16 x f16 -> f32 one', () => {
    const cases: Array<[string, Capabilities]> = [
      ['lavapipe', lavapipe],
      ['a GPU without the feature', { ...h100, features: new Set(['subgroups', 'shader-f16']) }],
      ['the feature but no configurations', { ...h100, subgroupMatrix: { configs: [], subgroupMaxSize: 32 } }],
      ['only f16 -> f16 and f32 -> f32', { ...h100, subgroupMatrix: { configs: [{ ...cfg16, resultComponentType: 'f16' }, { ...cfg16, componentType: 'f32' }], subgroupMaxSize: 32 } }],
      ['no shader-f16', { ...h100, features: new Set(['subgroups', SM_FEATURE]) }],
      ['tiles past the workgroup memory', { ...h100, limits: { ...limits, maxComputeWorkgroupStorageSize: 8192 } }],
    ];
    for (const [what, caps] of cases) {
      for (const v of REAL) {
        expect(offers(caps), what).not.toContain(v);
        const p = new VariantPolicy(caps);
        expect(REAL, what).not.toContain(p.pick(MATMUL, big).name);
        p.force('matmul', v); // a forced variant the adapter cannot run falls back
        expect(REAL, `${what}, forced`).not.toContain(p.pick(MATMUL, big).name);
      }
    }
  });
  it('is offered only under \'medium\' float32 matmul precision (PyTorch\'s name), which is not the default', () => {
    E.setFloat32MatmulPrecision('highest');
    try {
      expect(offers(h100)).not.toEqual(expect.arrayContaining([SM_VARIANT]));
      expect(new VariantPolicy(h100).pick(MATMUL, big).name).not.toBe(SM_VARIANT_SMALL);
      E.setFloat32MatmulPrecision('high');
      expect(offers(h100)).not.toEqual(expect.arrayContaining([SM_VARIANT]));
      expect(() => E.setFloat32MatmulPrecision('low' as E.MatmulPrecision)).toThrow(/'low' is not one of highest, high, medium/);
    } finally { E.setFloat32MatmulPrecision('medium'); }
    expect(offers(h100)).toEqual(expect.arrayContaining(REAL));
  });
  it('the table rule takes it on a GPU with tensor cores for products of at least 256 each way, else keeps the f32 kernels', () => {
    const p = new VariantPolicy(h100);
    expect(offers(h100)).toEqual(expect.arrayContaining(REAL));
    expect(p.pick(MATMUL, big).name).toBe(SM_VARIANT_SMALL);
    expect(p.pick(MATMUL, { ...big, M: 256, N: 300, K: 4096 }).name).toBe(SM_VARIANT_SMALL);
    expect(p.pick(MATMUL, { ...big, M: 2048, N: 2048 }).name).toBe(SM_VARIANT);
    expect(p.pick(MATMUL, { ...big, batch: 16 }).name).toBe(SM_VARIANT);
    for (const s of [{ ...big, K: 255 }, { ...big, M: 64 }, { ...big, N: 128, batch: 64 }]) expect(REAL, JSON.stringify(s)).not.toContain(p.pick(MATMUL, s).name);
    // The emulation is no variant of matmul: neither a table rule nor the tuner can take it.
    expect(MATMUL.variants.map((v) => v.name)).not.toContain(EMULATED);
    expect(MATMUL_SM_EMULATED.bucket).toBeUndefined();
    // A software adapter that somehow had the feature keeps today's kernels unless tuned or forced.
    const soft: Capabilities = { ...h100, adapter: { vendor: 'mesa', architecture: 'software', description: 'llvmpipe' } };
    expect(REAL).not.toContain(new VariantPolicy(soft).pick(MATMUL, big).name);
  });
  it('compiles with the adapter\'s first f16 x f16 -> f32 configuration whose tiles fit', () => {
    expect(chooseSubgroupMatrixConfig(h100)).toEqual(cfg16);
    const cfgs = [{ ...cfg16, M: 32, N: 32, K: 32 }, { ...cfg16, N: 8 }, cfg16];
    expect(workgroupBytes(cfgs[0]!)).toBeGreaterThan(49152);
    expect(chooseSubgroupMatrixConfig({ ...h100, subgroupMatrix: { configs: cfgs, subgroupMaxSize: 32 } })).toEqual(cfgs[1]);
    // 4 subgroups of 32 invocations need a 128-invocation workgroup.
    expect(chooseSubgroupMatrixConfig({ ...h100, limits: { ...limits, maxComputeInvocationsPerWorkgroup: 64 } })).toBeUndefined();
    expect(workgroupBytes(cfg16)).toBeLessThanOrEqual(16384); // fits WebGPU's default limit
  });
  it('reports this adapter\'s configurations', () => {
    const d = E.getDevice();
    console.log(`subgroup matrices on ${d.info.vendor} ${d.info.description}: feature ${d.features.has(SM_FEATURE)}, subgroupMaxSize ${d.subgroupMatrix.subgroupMaxSize}, configs ${JSON.stringify(d.subgroupMatrix.configs)}`);
    expect(d.subgroupMatrix.configs.length === 0 || d.features.has(SM_FEATURE)).toBe(true);
  });
});

// Each op's tensor-core family: its bindings (reflected) and the variants that run it.
const FAMILIES = [
  { family: SM_FAMILY, bindings: { p: 0, c: 1, a: 2, b: 3 }, kernel: MATMUL },
  { family: CONV_SM_FAMILY, bindings: { p: 0, x: 1, w: 2, bias: 3, c: 4, res: 6 }, kernel: CONV_FORWARD },
];

describe.each(FAMILIES)('the subgroup-matrix shader of $family', ({ family, bindings, kernel }) => {
  // Compiled for this device's configuration where it has one, else for a 16 x 16 x 16 one.
  const config = () => chooseSubgroupMatrixConfig({ subgroupMatrix: E.getDevice().subgroupMatrix, limits: E.getDevice().limits as unknown as Record<string, number> }) ?? cfg16;
  const source = () => {
    if (!prepareSubgroupMatrix(E.getDevice())) registerGenerated(SM_FRAGMENTS, 'config', 'const SM_M: u32 = 16u;\nconst SM_N: u32 = 16u;\nconst SM_K: u32 = 16u;');
    return shaderSource(family);
  };
  it('reflects to the bindings and overrides the launcher uses', () => {
    const r = new WgslReflect(reflectable(source()));
    const ep = r.entry.compute.find((e) => e.name === SM_ENTRY)!;
    expect(Object.fromEntries(ep.resources.map((x) => [x.name, x.binding]))).toEqual(bindings);
    expect(r.overrides.map((o) => o.name)).toEqual(expect.arrayContaining(['SG_ROWS', 'SG_COLS', 'SG_SIZE', 'WG']));
    // The sizes TypeScript plans workgroup memory with are the shader's.
    const { M, N, K } = config();
    expect(integerConstants(source())).toMatchObject({ PAD: SM_PAD, SM_M: M, SM_N: N, SM_K: K });
    for (const name of REAL) expect((kernel.variants as ReadonlyArray<{ name: string; family?: string; constants?: unknown }>).find((x) => x.name === name)).toMatchObject({ family, constants: SM_TILES[name] });
  });
  it('parses in Dawn; where the adapter has the feature, compiles (the test shows Dawn\'s messages if not)', async () => {
    const d = E.getDevice();
    const m = d.gpu.createShaderModule({ code: source() });
    const errors = (await m.getCompilationInfo()).messages.filter((x) => x.type === 'error').map((x) => `${x.lineNum}:${x.linePos} ${x.message}`);
    if (!hasTensorCores()) {
      expect(errors).toEqual([expect.stringContaining("extension 'chromium_experimental_subgroup_matrix' is not allowed")]);
      return;
    }
    const pipelines: Record<string, string | null> = {};
    for (const name of REAL) {
      d.gpu.pushErrorScope('validation');
      d.gpu.createComputePipeline({ layout: 'auto', compute: { module: m, entryPoint: SM_ENTRY, constants: { ...SM_TILES[name], ...prepareSubgroupMatrix(d) } } });
      pipelines[name] = (await d.gpu.popErrorScope())?.message ?? null;
    }
    expect({ config: config(), errors, pipelines }).toEqual({ config: config(), errors: [], pipelines: Object.fromEntries(REAL.map((n) => [n, null])) });
  });
});

type Case = { a: number[]; b: number[]; ta?: boolean; tb?: boolean };
const transpose2 = (x: R.Arr): R.Arr => R.permute(x, [...x.shape.keys()].map((i, _, all) => (i < all.length - 2 ? i : i === all.length - 2 ? i + 1 : i - 1)));

/** Runs `variant` forced through the registry on random inputs (plus a NaN and an f16 overflow) and checks it. */
async function check(variant: string, { a: sa, b: sb, ta = false, tb = false }: Case): Promise<void> {
  const r = new Rng(sa.reduce((x, y) => x * 31 + y, 7) + sb.reduce((x, y) => x * 17 + y, 3));
  const a = r.arr(sa, -1, 1), b = r.arr(sb, -1, 1);
  const [M, K] = sa.slice(-2) as [number, number];
  if (M > 2 && K > 2) { a.data[K + 1] = NaN; a.data[2 * K] = 7e4; } // row 1: NaN; row 2: past f16's range
  const shape = { M, N: sb[sb.length - 1]!, K, batch: 1, bRowContiguous: !tb };
  const policy = E.getEngine().policy;
  const kernel = variant === EMULATED ? MATMUL_SM_EMULATED : MATMUL;
  expect(policy.candidates(kernel, shape).map((v) => v.name), `${kernel.name} runs ${variant} here`).toContain(variant);
  policy.force(kernel.name, variant);
  const c = E.tidy(() => matmulKernel(toTensor(ta ? transpose2(a) : a), toTensor(tb ? transpose2(b) : b), ta, tb, { kernel }));
  const what = `${variant} [${sa}]${ta ? ' (read transposed)' : ''} x [${sb}]${tb ? ' (read transposed)' : ''}`;
  expect(f16MatmulMismatch(await c.data(), a, b, what)).toBeNull();
  c.dispose();
}

const CASES: Case[] = [
  { a: [1, 1], b: [1, 1] }, { a: [17, 9], b: [9, 33] }, { a: [127, 300], b: [300, 65] },
  { a: [64, 64], b: [64, 64] }, { a: [130, 40], b: [40, 132] }, { a: [3, 17, 40], b: [40, 70] },
  { a: [2, 1, 19, 24], b: [3, 24, 5] }, { a: [33, 20], b: [20, 31], ta: true, tb: true },
];

describe('the subgroup-matrix tiling on plain arrays (subgroup-matrix-emulated; needs shader-f16)', () => {
  const hasF16 = () => E.getDevice().features.has('shader-f16');
  for (const k of [...CASES, { a: [256, 256], b: [256, 256] }]) {
    it.skipIf(!hasF16())(`[${k.a}] x [${k.b}]${k.ta ? ' transposed' : ''} against float64 within the f16 tolerance`, () => check(EMULATED, k));
  }
});

describe(`tensor-core matmul (${REAL.join(', ')}; skipped: this adapter has no ${SM_FEATURE} with an f16 x f16 -> f32 configuration)`, () => {
  for (const v of REAL) {
    for (const k of [...CASES, { a: [512, 512], b: [512, 512] }, { a: [300, 256], b: [256, 260] }, { a: [4, 128, 96], b: [4, 96, 200] }]) {
      it.skipIf(!hasTensorCores())(`${v} [${k.a}] x [${k.b}]${k.ta ? ' transposed' : ''} against float64 within the f16 tolerance`, () => check(v, k));
    }
  }
  it.skipIf(!hasTensorCores())('is the table rule\'s pick for a 512^3 product on this GPU', () => {
    expect(new VariantPolicy({ features: E.getDevice().features, limits: E.getDevice().limits as unknown as Record<string, number>, adapter: E.getDevice().info, subgroupMatrix: E.getDevice().subgroupMatrix }).pick(MATMUL, big).name).toBe(SM_VARIANT_SMALL);
  });
});
