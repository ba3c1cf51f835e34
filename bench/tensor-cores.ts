// `tsx bench/tensor-cores.ts [--json FILE]`: the tensor-core matmul's and convolution's correctness
// check for a lent GPU (bench/gpu.sh runs it first, bundled, where no vitest is installed). It
// prints the adapter's subgroup-matrix configurations, Dawn's messages if a shader does not
// compile, and for each shape whether the `subgroup-matrix-f16(-small)` variants of matmul and
// conv2d.forward, forced through the registry, agree with float64 within the f16 tolerance
// (engine/reference/f16.ts, the same checks as test/subgroup-matrix.test.ts and
// test/conv-subgroup-matrix.test.ts). Without the feature it checks the tiling's emulation instead.
// Exit status 1 when a check fails.
import { parseArgs } from 'node:util';
import * as E from '../engine/node.js';
import { shaderSource } from '../engine/kernels/shaders.js';
import { MATMUL, MATMUL_SM_EMULATED, matmulKernel } from '../engine/ops/linalg.js';
import { CONV_FORWARD, CONV_SM_EMULATED, convGeometry, direct } from '../engine/ops/conv.js';
import { CONV_SM_FAMILY, prepareSubgroupMatrix, SM_ENTRY, SM_FAMILY, SM_TILES, SM_VARIANT, SM_VARIANT_SMALL } from '../engine/ops/matmul-subgroup-matrix.js';
import { Rng } from '../engine/reference/check.js';
import * as R from '../engine/reference/float64.js';
import { f16ConvMismatch, f16MatmulMismatch } from '../engine/reference/f16.js';
import { writeJsonAtomic } from './harness.js';

const { values } = parseArgs({ options: { json: { type: 'string' } } });
const device = await E.init();
// Tensor cores (float16 inputs) are offered only under 'medium' float32 matmul precision.
E.setFloat32MatmulPrecision('medium');
const policy = E.getEngine().policy;
const real = policy.candidates(MATMUL, { M: 512, N: 512, K: 512, batch: 1, bRowContiguous: true }).some((v) => v.name === SM_VARIANT);
const report: Record<string, unknown> = {
  adapter: `${device.info.vendor} ${device.info.architecture} ${device.info.description}`,
  feature: device.features.has('chromium-experimental-subgroup-matrix'), subgroupMatrix: device.subgroupMatrix, real,
};
console.log(`tensor cores: ${JSON.stringify(report)}`);

// Compile on its own first, so a failure shows Dawn's own messages rather than "invalid pipeline".
if (real) {
  const compile: Record<string, unknown> = {};
  for (const family of [SM_FAMILY, CONV_SM_FAMILY]) {
    const m = device.gpu.createShaderModule({ code: (prepareSubgroupMatrix(device), shaderSource(family)) });
    const messages = (await m.getCompilationInfo()).messages.map((x) => `${x.type} ${x.lineNum}:${x.linePos} ${x.message}`);
    let pipeline: string | null = null;
    for (const [name, tile] of Object.entries(SM_TILES)) {
      device.gpu.pushErrorScope('validation');
      device.gpu.createComputePipeline({ layout: 'auto', compute: { module: m, entryPoint: SM_ENTRY, constants: { ...tile, ...prepareSubgroupMatrix(device) } } });
      const e = (await device.gpu.popErrorScope())?.message;
      if (e) pipeline = `${pipeline ?? ''}${name}: ${e}\n`;
    }
    compile[family] = { messages, pipeline };
    console.log(`compile ${family}: ${messages.length ? messages.join('\n  ') : 'no messages'}; pipelines: ${pipeline ?? 'ok'}`);
  }
  report.compile = compile;
}

const shapes: Array<[number[], number[], boolean?]> = [
  [[1, 1], [1, 1]], [[17, 9], [9, 33]], [[127, 300], [300, 65]], [[64, 64], [64, 64]], [[130, 40], [40, 132]],
  [[3, 17, 40], [40, 70]], [[2, 1, 19, 24], [3, 24, 5]], [[33, 20], [20, 31], true],
  ...(real ? [[[512, 512], [512, 512]], [[300, 256], [256, 260]], [[4, 128, 96], [4, 96, 200]], [[1024, 2048], [2048, 768]]] as Array<[number[], number[]]> : []),
];
const kernel = real ? MATMUL : MATMUL_SM_EMULATED;
const results: Array<{ variant: string; shape: string; ok: boolean; detail?: string; ms: number }> = [];

/** Forces `variant` of kernel `name`, runs `check` (null: pass, else what failed), records and prints it. */
async function record(name: string, variant: string, shape: string, check: () => Promise<string | null>): Promise<void> {
  const t0 = performance.now();
  let detail: string | null;
  try {
    policy.force(name, variant);
    detail = await check();
  } catch (e) {
    detail = `${variant} ${shape}: ${(e as Error).message}`;
  } finally {
    policy.force(name, null);
  }
  results.push({ variant, shape, ok: detail === null, ...(detail ? { detail } : {}), ms: Math.round(performance.now() - t0) });
  console.log(`${detail === null ? 'PASS' : 'FAIL'} ${variant} ${shape}${detail ? `\n  ${detail}` : ''}`);
}
// The operand stored transposed (matmul reads it through strides).
const flip = (x: R.Arr): R.Arr => R.permute(x, x.shape.map((_, i, all) => (i < all.length - 2 ? i : i === all.length - 2 ? i + 1 : i - 1)));
const gpuTensor = (x: R.Arr) => E.tensor(Float32Array.from(x.data), x.shape);
for (const variant of real ? [SM_VARIANT, SM_VARIANT_SMALL] : ['subgroup-matrix-emulated']) for (const [sa, sb, trans = false] of shapes) {
  const r = new Rng(sa.length * 1000 + sa[sa.length - 1]!);
  const a = r.arr(sa, -1, 1), b = r.arr(sb, -1, 1);
  const [M, K] = sa.slice(-2) as [number, number];
  if (M > 2 && K > 2) { a.data[K + 1] = NaN; a.data[2 * K] = 7e4; } // a NaN row and an f16 overflow row
  const shape = `[${sa}] x [${sb}]${trans ? ' (both read transposed)' : ''}`;
  await record(kernel.name, variant, shape, async () => {
    const c = E.tidy(() => matmulKernel(gpuTensor(trans ? flip(a) : a), gpuTensor(trans ? flip(b) : b), trans, trans, { kernel }));
    const detail = f16MatmulMismatch(await c.data(), a, b, `${variant} ${shape}`);
    c.dispose();
    return detail;
  });
}
// The convolution: [N, Cin, H, W] * [Cout, Cin, K, K], stride, padding (odd sizes, tiles crossed, the study's layers).
const convs: Array<[number[], number[], number, number]> = [
  [[1, 3, 9, 11], [5, 3, 3, 3], 1, 1], [[3, 4, 10, 7], [17, 4, 5, 5], 2, 2], [[2, 6, 8, 8], [16, 6, 3, 3], 1, 0],
  ...(real ? [[[4, 64, 20, 20], [96, 64, 3, 3], 1, 1], [[8, 64, 56, 56], [64, 64, 3, 3], 1, 1], [[8, 256, 14, 14], [512, 256, 1, 1], 2, 0]] as Array<[number[], number[], number, number]> : []),
];
const convKernel = real ? CONV_FORWARD : CONV_SM_EMULATED;
for (const variant of real ? [SM_VARIANT, SM_VARIANT_SMALL] : ['subgroup-matrix-emulated']) for (const [sx, sw, stride, padding] of convs) {
  const r = new Rng(sx[1]! * 1000 + sw[0]!);
  const x = r.arr(sx, -1, 1), w = r.arr(sw, -1, 1);
  x.data[5] = NaN;
  const shape = `conv2d [${sx}] * [${sw}] s${stride} p${padding}`;
  await record(convKernel.name, variant, shape, async () => {
    const [xt, wt] = [gpuTensor(x), gpuTensor(w)];
    const g = convGeometry(xt, wt, undefined, { stride, padding });
    const y = direct(xt, wt, {}, g, undefined, 'conv2d', convKernel);
    const detail = f16ConvMismatch(await y.data(), x, w, g.sh, g.sw, [g.pt, g.pb, g.pl, g.pr], `${variant} ${shape}`);
    E.dispose([xt, wt, y]);
    return detail;
  });
}
report.results = results;
if (values.json) writeJsonAtomic(values.json, report);
const failed = results.filter((x) => !x.ok).length;
const compileFailed = Object.values((report.compile ?? {}) as Record<string, { pipeline: string | null }>).some((c) => c.pipeline);
console.log(`tensor cores: ${results.length - failed} of ${results.length} checks pass`);
process.exit(failed > 0 || compileFailed ? 1 : 0);
