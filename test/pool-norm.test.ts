// Every variant of the pooling and batch-norm kernels, forced through the registry, against
// float64 references: pooling forward and input gradient (max and average; odd sizes, batch 1,
// padding, overlapping and non-square windows; NaN windows give NaN), batch norm forward, running
// statistics and gradients (training and inference, with the fused residual and ReLU; planes of
// odd and multiple-of-4 sizes, channels split into several chunks), and the one-pass statistics
// on data far from zero.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { kernels, VariantPolicy } from '../engine/kernels/variants.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';

beforeAll(gpu);
afterEach(() => { for (const k of kernels()) E.getEngine().policy.force(k.name, null); });

const bits = async (t: E.Tensor) => Array.from(new Uint32Array((await t.data()).buffer));
const variantsOf = (name: string) => kernels().find((k) => k.name === name)!.variants.map((v) => v.name);
const force = (kernel: string, variant: string) => E.getEngine().policy.force(kernel, variant);

type Pads = [number, number, number, number];
interface PoolCase { shape: number[]; k: [number, number]; s: [number, number]; pad: Pads }

/** Index (in the plane) of each output's maximum: the first NaN, else the first largest value. */
function argmaxRef(x: R.Arr, c: PoolCase): { idx: number[]; OH: number; OW: number } {
  const [N, C, H, W] = c.shape as [number, number, number, number];
  const [pt, pb, pl, pr] = c.pad;
  const OH = Math.floor((H + pt + pb - c.k[0]) / c.s[0]) + 1, OW = Math.floor((W + pl + pr - c.k[1]) / c.s[1]) + 1;
  const idx: number[] = [];
  for (let p = 0; p < N * C; p++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let best = -1, bv = -Infinity;
    for (let u = 0; u < c.k[0]; u++) for (let v = 0; v < c.k[1]; v++) {
      const ih = i * c.s[0] - pt + u, iw = j * c.s[1] - pl + v;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const val = x.data[(p * H + ih) * W + iw]!;
      if (best < 0 || (!Number.isNaN(bv) && (Number.isNaN(val) || val > bv))) { best = ih * W + iw; bv = val; }
    }
    idx.push(best);
  }
  return { idx, OH, OW };
}

/** Gradient of sum(pool(x) * dy) with respect to x, in float64. */
function poolGradRef(x: R.Arr, dy: R.Arr, kind: 'max' | 'avg', c: PoolCase): R.Arr {
  const [N, C, H, W] = c.shape as [number, number, number, number];
  const { idx, OH, OW } = argmaxRef(x, c);
  const dx = new Float64Array(x.data.length);
  for (let p = 0; p < N * C; p++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const o = (p * OH + i) * OW + j;
    if (kind === 'max') { dx[p * H * W + idx[o]!]! += dy.data[o]!; continue; }
    const cells: number[] = [];
    for (let u = 0; u < c.k[0]; u++) for (let v = 0; v < c.k[1]; v++) {
      const ih = i * c.s[0] - c.pad[0] + u, iw = j * c.s[1] - c.pad[2] + v;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) cells.push(p * H * W + ih * W + iw);
    }
    for (const q of cells) dx[q]! += dy.data[o]! / cells.length;
  }
  return { shape: [...x.shape], data: dx };
}

const POOL_CASES: PoolCase[] = [
  { shape: [2, 3, 9, 8], k: [3, 3], s: [2, 2], pad: [0, 0, 0, 0] },
  { shape: [1, 2, 15, 15], k: [3, 3], s: [2, 2], pad: [1, 1, 1, 1] },
  { shape: [1, 1, 5, 7], k: [3, 3], s: [1, 1], pad: [1, 1, 1, 1] }, // overlapping: nine phases
  { shape: [3, 2, 6, 6], k: [2, 2], s: [2, 2], pad: [0, 0, 0, 0] },
  { shape: [1, 3, 8, 9], k: [2, 3], s: [1, 2], pad: [1, 0, 0, 2] },
  { shape: [2, 1, 4, 4], k: [4, 4], s: [4, 4], pad: [0, 0, 0, 0] },
  { shape: [1, 1, 13, 21], k: [3, 2], s: [3, 1], pad: [0, 2, 1, 1] },
  // Rows of whole vec4s (the 'vec4' forward): top, bottom and right padding, runs cut by the row's end.
  { shape: [1, 2, 7, 12], k: [3, 3], s: [2, 2], pad: [1, 1, 0, 1] },
  { shape: [2, 1, 5, 8], k: [2, 2], s: [1, 1], pad: [0, 0, 0, 1] },
  { shape: [1, 1, 6, 4], k: [2, 3], s: [2, 1], pad: [0, 0, 0, 0] },
  // The window-compiled 'rows' kernels: left and top padding (backward), strides 3 with gaps
  // between windows, output rows not a multiple of ROWS, planes whose size is a multiple of 4.
  { shape: [2, 2, 9, 12], k: [3, 3], s: [2, 2], pad: [1, 1, 1, 1] },
  { shape: [1, 1, 10, 16], k: [3, 2], s: [3, 3], pad: [2, 0, 1, 0] },
  { shape: [1, 3, 11, 8], k: [3, 3], s: [1, 1], pad: [0, 2, 0, 2] },
  { shape: [3, 1, 13, 4], k: [1, 2], s: [4, 2], pad: [0, 0, 0, 0] },
];

describe('pooling, every variant forced', () => {
  for (const fwd of variantsOf('pool.forward')) {
    for (const bwd of variantsOf('pool.backward')) {
      for (const kind of ['max', 'avg'] as const) {
        it(`${kind} pool: forward '${fwd}', backward '${bwd}' match float64`, async () => {
          force('pool.forward', fwd);
          force('pool.backward', bwd);
          const r = new Rng(7);
          for (const c of POOL_CASES) {
            const x = r.arr(c.shape);
            const pool = kind === 'max' ? E.maxPool2d : E.avgPool2d;
            const X = toTensor(x, true);
            const y = pool(X, c.k, { stride: c.s, padding: c.pad });
            const label = `${kind} [${c.shape}] k${c.k} s${c.s} pad ${c.pad}`;
            expectClose(await y.data(), y.shape, R.pool2d(x, kind, c.k[0], c.k[1], c.s[0], c.s[1], c.pad), { atol: 1e-6, rtol: 1e-5 }, label);
            const dy = r.arr([...y.shape]);
            const [dx] = E.grad(y, [X], toTensor(dy));
            expectClose(await dx!.data(), dx!.shape, poolGradRef(x, dy, kind, c), { atol: 1e-6, rtol: 1e-5 }, `d/dx ${label}`);
            E.dispose([X, y, dx!]);
          }
        });
      }
    }
  }

  it('the table rule walks whole planes only when there are many (for average only where the vec4 gather does not run), and reads vec4 rows only where they line up', () => {
    const policy = E.getEngine().policy;
    const kernel = (name: string) => kernels().find((k) => k.name === name)! as Parameters<typeof policy.pick>[0];
    expect(policy.pick(kernel('pool.backward'), { kind: 'max', H: 56, W: 56, planes: 1024, sh: 2, exact: true }).name).toBe('plane4');
    expect(policy.pick(kernel('pool.backward'), { kind: 'max', H: 55, W: 55, planes: 1024, sh: 2, exact: true }).name).toBe('plane');
    expect(policy.pick(kernel('pool.backward'), { kind: 'avg', H: 56, W: 56, planes: 1024, sh: 2, exact: true }).name).toBe('rows');
    expect(policy.pick(kernel('pool.backward'), { kind: 'avg', H: 58, W: 58, planes: 1024, sh: 2, exact: true }).name).toBe('plane4');
    expect(policy.pick(kernel('pool.backward'), { kind: 'max', H: 56, W: 56, planes: 12, sh: 2, exact: true }).name).toBe('rows');
    expect(policy.pick(kernel('pool.backward'), { kind: 'max', H: 55, W: 55, planes: 12, sh: 2, exact: true }).name).toBe('phases');
    expect(policy.pick(kernel('pool.forward'), { kind: 'max', W: 56, pl: 0, KW: 3, sw: 2, exact: true }).name).toBe('rows4');
    expect(policy.pick(kernel('pool.forward'), { kind: 'avg', W: 56, pl: 0, KW: 3, sw: 2, exact: true }).name).toBe('vec4');
    expect(policy.pick(kernel('pool.forward'), { kind: 'max', W: 57, pl: 0, KW: 3, sw: 2, exact: true }).name).toBe('run4');
    expect(policy.pick(kernel('pool.forward'), { kind: 'max', W: 56, pl: 1, KW: 3, sw: 2, exact: true }).name).toBe('run4');
    // Tensors past the float-quotient divisions' exact range (quotients of 2^22 and more) take the plain kernels.
    expect(policy.pick(kernel('pool.forward'), { kind: 'max', W: 56, pl: 0, KW: 3, sw: 2, exact: false }).name).toBe('grid');
    expect(policy.pick(kernel('pool.backward'), { kind: 'max', H: 56, W: 56, planes: 12, sh: 2, exact: false }).name).toBe('gather');
    // A hardware GPU never gets the serial walk per plane.
    const onGpu = new VariantPolicy({ features: new Set(), limits: {}, adapter: { vendor: 'nvidia', architecture: 'unknown', description: 'NVIDIA: 580.159.04' } });
    expect(onGpu.pick(kernel('pool.backward'), { kind: 'max', H: 56, W: 56, planes: 1024, sh: 2, exact: true }).name).toBe('rows');
    expect(onGpu.pick(kernel('pool.backward'), { kind: 'max', H: 55, W: 55, planes: 1024, sh: 2, exact: true }).name).toBe('phases');
  });

  it.each(variantsOf('pool.forward'))('max pool forward \'%s\': a window holding a NaN gives NaN, and its gradient goes to a NaN', async (fwd) => {
    force('pool.forward', fwd);
    const r = new Rng(11);
    for (const c of [POOL_CASES[0]!, POOL_CASES[2]!, POOL_CASES[4]!, POOL_CASES[7]!, POOL_CASES[10]!, POOL_CASES[12]!]) {
      const x = r.arr(c.shape);
      for (let i = 0; i < x.data.length; i += 7) x.data[i] = NaN;
      const X = toTensor(x, true);
      const y = E.maxPool2d(X, c.k, { stride: c.s, padding: c.pad });
      const { idx } = argmaxRef(x, c);
      const [, , H, W] = c.shape as [number, number, number, number];
      const ys = await y.data();
      const per = ys.length / (c.shape[0]! * c.shape[1]!);
      ys.forEach((v, o) => {
        const want = x.data[Math.floor(o / per) * H * W + idx[o]!]!;
        expect(Number.isNaN(v) ? 'NaN' : v, `output ${o}`).toBe(Number.isNaN(want) ? 'NaN' : want);
      });
      expect(ys.some(Number.isNaN)).toBe(true);
      const dy = r.arr([...y.shape]);
      for (const bwd of variantsOf('pool.backward')) {
        force('pool.backward', bwd);
        const [dx] = E.grad(y, [X], { gradient: toTensor(dy), retainGraph: true });
        expectClose(await dx!.data(), dx!.shape, poolGradRef(x, dy, 'max', c), { atol: 1e-6, rtol: 1e-5 }, `NaN d/dx '${bwd}' [${c.shape}]`);
        dx!.dispose();
      }
      E.dispose([X, y]);
    }
  });
});

/** Gradients of sum(bnrelu(x) * dy) for x, weight, bias (and the residual), in float64. */
function bnRef(x: R.Arr, g: R.Arr, b: R.Arr, res: R.Arr | null, dy: R.Arr, eps: number, training: boolean, rm: R.Arr, rv: R.Arr, relu: boolean) {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const M = N * H * W;
  const { y: bn, mean, varBiased } = R.batchNorm(x, g, b, eps, training ? undefined : { mean: rm, var: rv });
  const out = bn.data.map((v, i) => (res ? v + res.data[i]! : v)).map((v) => (relu ? Math.max(v, 0) : v));
  const gy = dy.data.map((d, i) => (relu && !(out[i]! > 0) ? 0 : d));
  const at = (n: number, c: number, k: number) => (n * C + c) * H * W + k;
  const dx = new Float64Array(x.data.length), dg: number[] = [], db: number[] = [];
  for (let c = 0; c < C; c++) {
    const mu = training ? mean[c]! : rm.data[c]!;
    const inv = 1 / Math.sqrt((training ? varBiased[c]! : rv.data[c]!) + eps);
    let s1 = 0, s2 = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) { const i = at(n, c, k); s1 += gy[i]!; s2 += gy[i]! * (x.data[i]! - mu) * inv; }
    dg.push(s2); db.push(s1);
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) {
      const i = at(n, c, k), xhat = (x.data[i]! - mu) * inv;
      dx[i] = g.data[c]! * inv * (training ? gy[i]! - s1 / M - (xhat * s2) / M : gy[i]!);
    }
  }
  const arr = (d: ArrayLike<number>, shape: number[]): R.Arr => ({ shape, data: Float64Array.from(d) });
  return { y: arr(out, [...x.shape]), dx: arr(dx, [...x.shape]), dg: arr(dg, [C]), db: arr(db, [C]), dres: arr(gy, [...x.shape]), mean, varBiased };
}

// Multiple-of-4 and odd planes, batch 1, one channel, and channels of more than one chunk.
const BN_SHAPES = [[2, 3, 4, 6], [3, 2, 5, 5], [1, 4, 7, 3], [2, 1, 1, 8], [5, 2, 48, 40], [3, 2, 41, 67]];
const BN_KERNELS = ['batchnorm.stats', 'batchnorm.sums', 'batchnorm.apply', 'batchnorm.backward'];

describe('batch norm, every variant forced', () => {
  for (const kernel of BN_KERNELS) {
    for (const variant of variantsOf(kernel)) {
      for (const training of [true, false]) {
        it(`${kernel} '${variant}', ${training ? 'training' : 'inference'}: values, running statistics and gradients match float64 (plain, and fused with residual and ReLU)`, async () => {
          force(kernel, variant);
          const r = new Rng(training ? 21 : 22);
          for (const shape of BN_SHAPES) {
            for (const fused of [false, true]) {
              const C = shape[1]!;
              const x = r.arr(shape, -2, 3), g = r.arr([C], 0.5, 1.5), b = r.arr([C], -1, 1), rm = r.arr([C], -0.5, 0.5), rv = r.arr([C], 0.5, 2);
              const res = fused ? r.arr(shape, -1, 1) : null, dy = r.arr(shape);
              const want = bnRef(x, g, b, res, dy, 1e-3, training, rm, rv, fused);
              const [X, G, B, Res] = [toTensor(x, true), toTensor(g, true), toTensor(b, true), res ? toTensor(res, true) : null];
              const RM = toTensor(rm), RV = toTensor(rv);
              const o = { training, eps: 1e-3, momentum: 0.3 };
              const y = fused ? E.batchNormRelu2d(X, G, B, RM, RV, Res, o) : E.batchNorm2d(X, G, B, RM, RV, o);
              const label = `[${shape}]${fused ? ' fused' : ''}`;
              const tol = { atol: 1e-4, rtol: 1e-4 };
              expectClose(await y.data(), y.shape, want.y, tol, `y ${label}`);
              if (training) {
                const M = x.data.length / C;
                expectClose(await RM.data(), [C], { shape: [C], data: Float64Array.from(rm.data, (v, c) => 0.7 * v + 0.3 * want.mean[c]!) }, tol, `running mean ${label}`);
                expectClose(await RV.data(), [C], { shape: [C], data: Float64Array.from(rv.data, (v, c) => 0.7 * v + (0.3 * want.varBiased[c]! * M) / (M - 1)) }, tol, `running var ${label}`);
              }
              const inputs = [X, G, B, ...(Res ? [Res] : [])];
              const grads = E.grad(y, inputs, { gradient: toTensor(dy), retainGraph: true });
              const refs = [want.dx, want.dg, want.db, want.dres];
              for (let i = 0; i < grads.length; i++) expectClose(await grads[i]!.data(), grads[i]!.shape, refs[i]!, { atol: 2e-4, rtol: 1e-3 }, `gradient ${i} ${label}`);
              if (fused) {
                // The fused kernels give bitwise the unfused ops' values and gradients.
                const [RM2, RV2] = [toTensor(rm), toTensor(rv)];
                const plain = E.relu(E.add(E.batchNorm2d(X, G, B, RM2, RV2, o), Res!));
                expect(await bits(plain), `unfused ${label}`).toEqual(await bits(y));
                const pg = E.grad(plain, inputs, toTensor(dy));
                for (let i = 0; i < pg.length; i++) expect(await bits(pg[i]!), `unfused gradient ${i} ${label}`).toEqual(await bits(grads[i]!));
                E.dispose([plain, pg, RM2, RV2]);
              }
              E.dispose([X, G, B, RM, RV, y, grads, ...(Res ? [Res] : [])]);
            }
          }
        });
      }
    }
  }

  it.each(variantsOf('batchnorm.sums'))('channel sums \'%s\' (a convolution\'s bias gradient) match float64', async (variant) => {
    force('batchnorm.sums', variant);
    const r = new Rng(5);
    for (const [N, H, W] of [[2, 5, 7], [1, 4, 6], [3, 40, 52]]) {
      const X = toTensor(r.arr([N!, 3, H!, W!])), Wt = toTensor(r.arr([4, 3, 3, 3])), B = toTensor(r.arr([4]), true);
      const y = E.conv2d(X, Wt, B, { padding: 'same' });
      const dy = r.arr([...y.shape]);
      const [db] = E.grad(y, [B], toTensor(dy));
      const want = [0, 1, 2, 3].map((c) => { let t = 0; for (let n = 0; n < N!; n++) for (let i = 0; i < H! * W!; i++) t += dy.data[(n * 4 + c) * H! * W! + i]!; return t; });
      expectClose(await db!.data(), db!.shape, { shape: [4], data: Float64Array.from(want) }, { atol: 1e-4, rtol: 1e-5 }, `bias gradient [${N}, 3, ${H}, ${W}]`);
      E.dispose([X, Wt, B, y, db!]);
    }
  });

  // A mean of 1000 with a spread of 0.01: raw sums of squares would cancel to nothing in float32.
  it.each(variantsOf('batchnorm.stats'))('statistics \'%s\' match float64 on data far from zero, over several chunks', async (variant) => {
    force('batchnorm.stats', variant);
    for (const shape of [[4, 3, 64, 40], [4, 3, 45, 45], [1, 2, 5, 5]]) {
      const x = E.affine(E.randn(shape, { generator: new E.Generator(9) }), 0.01, 1000);
      const C = shape[1]!;
      const rm = E.zeros([C]), rv = E.ones([C]);
      const y = E.batchNorm2d(x, E.ones([C]), E.zeros([C]), rm, rv, { training: true, momentum: 1, eps: 1e-3 });
      const xs = await x.data(), m = await rm.data(), v = await rv.data();
      const HW = shape[2]! * shape[3]!;
      for (let c = 0; c < C; c++) {
        const vals: number[] = [];
        for (let n = 0; n < shape[0]!; n++) for (let i = 0; i < HW; i++) vals.push(xs[(n * C + c) * HW + i]!);
        const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
        const unbiased = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1);
        expect(Math.abs(m[c]! - mean), `mean, channel ${c} of [${shape}]`).toBeLessThan(1e-4);
        expect(Math.abs(v[c]! - unbiased) / unbiased, `variance, channel ${c} of [${shape}]`).toBeLessThan(1e-3);
      }
      E.dispose([x, rm, rv, y]);
    }
  });
});
