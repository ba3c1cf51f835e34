// PyTorch's semantics where the engine's names match PyTorch's, checked against float64 on the
// CPU: NaN propagation, tanh's relative precision, grad's unused inputs and freed graphs, the
// where condition, scalar checks, squeeze's ownership and emptyCache with pending work.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu, Rng } from './helpers/setup.js';

beforeAll(gpu);

const f32 = (v: number) => Math.fround(v);

/** Values in [-3, 3] with NaN at random positions (about one in five). */
function withNaN(r: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => (r.next() < 0.2 ? NaN : r.uniform(-3, 3)));
}

/** Elementwise equality that treats NaN as equal to NaN, naming the first difference. */
function expectSame(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (!(Object.is(a, e) || a === e || (Number.isNaN(a) && Number.isNaN(e)))) expect.fail(`${what}: element ${i} is ${a}, expected ${e}`);
  }
}

describe('NaN propagates as in PyTorch', () => {
  const r = new Rng(12);
  // 4 x 33 takes the scalar kernels, 8 x 16 the vec4 ones.
  for (const shape of [[4, 33], [8, 16]]) {
    const n = shape[0]! * shape[1]!;
    it(`relu, clamp, maximum, minimum (tensor and scalar) ${JSON.stringify(shape)}`, async () => {
      const a = withNaN(r, n), b = withNaN(r, n);
      const ta = E.tensor(a, shape), tb = E.tensor(b, shape);
      const nanMax = (x: number, y: number) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y));
      const nanMin = (x: number, y: number) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y));
      const cases: Array<[string, () => E.Tensor, (i: number) => number]> = [
        ['relu', () => E.relu(ta), (i) => nanMax(a[i]!, 0)],
        ['clamp', () => E.clamp(ta, -1, 1), (i) => nanMin(nanMax(a[i]!, -1), 1)],
        ['maximum', () => E.maximum(ta, tb), (i) => nanMax(a[i]!, b[i]!)],
        ['minimum', () => E.minimum(ta, tb), (i) => nanMin(a[i]!, b[i]!)],
        ['maximum scalar', () => E.maximum(ta, 0.5), (i) => nanMax(a[i]!, 0.5)],
        ['minimum scalar', () => E.minimum(ta, 0.5), (i) => nanMin(a[i]!, 0.5)],
        ['clamp with a NaN bound', () => E.clamp(ta, NaN), () => NaN],
      ];
      for (const [name, run, ref] of cases) {
        const t = run();
        expectSame(await t.data(), Array.from({ length: n }, (_, i) => f32(ref(i))), name);
        t.dispose();
      }
      E.dispose([ta, tb]);
    });
  }

  it('max, min, argmax over rows short and long, and over all', async () => {
    for (const [rows, len] of [[300, 5], [3, 3000], [7, 9]] as Array<[number, number]>) {
      const a = withNaN(r, rows * len);
      // Some rows without any NaN, so both paths are exercised.
      for (let k = 0; k < rows; k += 2) for (let j = 0; j < len; j++) if (Number.isNaN(a[k * len + j]!)) a[k * len + j] = 0.25;
      const t = E.tensor(a, [rows, len]);
      const row = (k: number) => Array.from(a.subarray(k * len, (k + 1) * len));
      const mx = E.max(t, 1), mn = E.min(t, 1), am = E.argmax(t, 1), all = E.max(t);
      const hasNaN = (k: number) => row(k).some(Number.isNaN);
      expectSame(await mx.data(), Array.from({ length: rows }, (_, k) => (hasNaN(k) ? NaN : Math.max(...row(k)))), `max ${rows}x${len}`);
      expectSame(await mn.data(), Array.from({ length: rows }, (_, k) => (hasNaN(k) ? NaN : Math.min(...row(k)))), `min ${rows}x${len}`);
      expectSame(await am.data(), Array.from({ length: rows }, (_, k) => (hasNaN(k) ? row(k).findIndex(Number.isNaN) : row(k).indexOf(Math.max(...row(k))))), `argmax ${rows}x${len}`);
      expect(Number.isNaN(await all.item()), `max over all ${rows}x${len}`).toBe(true);
      E.dispose([t, mx, mn, am, all]);
    }
  });

  it('maxPool2d: a window holding a NaN gives NaN', async () => {
    const [N, C, H, W, K] = [2, 3, 7, 6, 2];
    const a = withNaN(r, N * C * H * W);
    const t = E.tensor(a, [N, C, H, W]);
    const y = E.maxPool2d(t, K);
    const OH = Math.floor(H / K), OW = Math.floor(W / K);
    const ref: number[] = [];
    for (let p = 0; p < N * C; p++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
      const win: number[] = [];
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) win.push(a[p * H * W + (oh * K + i) * W + ow * K + j]!);
      ref.push(win.some(Number.isNaN) ? NaN : Math.max(...win));
    }
    expectSame(await y.data(), ref, 'maxPool2d');
    E.dispose([t, y]);
  });

  it('a diverging computation shows NaN through relu and max', async () => {
    const x = E.tensor([Infinity, 1, 2]);
    const y = E.max(E.relu(E.sub(x, x))); // inf - inf = NaN
    expect(Number.isNaN(await y.item())).toBe(true);
    E.dispose([x, y]);
  });
});

describe('tanh keeps relative precision', () => {
  it('for 1e-8 <= |x| <= 1e-1 and saturates at large |x|', async () => {
    const xs: number[] = [];
    for (let e = -8; e <= -1; e += 0.25) xs.push(f32(10 ** e), f32(-(10 ** e)));
    xs.push(0.2, 0.25, 0.3, 0.5, 1, 3, -0.26, -0.7);
    const t = E.tensor(xs);
    const y = E.tanh(t);
    const got = await y.data();
    xs.forEach((x, i) => {
      const want = Math.tanh(x);
      expect(Math.abs(got[i]! - want) / Math.abs(want), `tanh(${x}) = ${got[i]}, float64 gives ${want}`).toBeLessThan(2e-6);
    });
    const big = E.tanh(E.tensor([100, -100, 30, -30, 1e30, -1e30, 0]));
    expect(Array.from(await big.data())).toEqual([1, -1, 1, -1, 1, -1, 0]);
    E.dispose([t, y, big]);
  });
});

describe('grad and backward', () => {
  it('grad raises for an input the output does not use, unless allowUnused', async () => {
    const x = E.tensor([1, 2], undefined, { requiresGrad: true });
    const z = E.tensor([3, 4], undefined, { requiresGrad: true });
    expect(() => E.tidy(() => E.grad(E.sum(E.mul(x, x)), [x, z]))).toThrow(/grad: input 1 \(shape \[2\]\) was not used to compute the output; pass \{ allowUnused: true \}/);
    const [gx, gz] = E.tidy(() => E.grad(E.sum(E.mul(x, x)), [x, z], { allowUnused: true }));
    expect(Array.from(await gx!.data())).toEqual([2, 4]);
    expect(gz).toBeNull();
    // Used through an op whose gradient is zero (sign) is used: zeros, as torch gives.
    const [gs] = E.tidy(() => E.grad(E.sum(E.sign(z)), [z]));
    expect(Array.from(await gs!.data())).toEqual([0, 0]);
    E.dispose([x, z, gx, gs]);
  });

  it('a second backward through a freed graph raises, unless the graph is retained', async () => {
    const x = E.tensor([1, 2], undefined, { requiresGrad: true });
    const loss = E.sum(E.mul(x, x));
    loss.backward();
    expect(() => loss.backward()).toThrow(/already differentiated and freed; pass \{ retainGraph: true \}/);
    expect(() => E.grad(loss, [x])).toThrow(/already differentiated and freed/);
    x.grad!.dispose(); x.grad = null;
    const kept = E.sum(E.mul(x, 3));
    kept.backward(undefined, { retainGraph: true });
    kept.backward();
    expect(Array.from(await x.grad!.data())).toEqual([6, 6]);
    const [g1] = E.grad(E.sum(E.mul(x, x)), [x], { retainGraph: true });
    expect(Array.from(await g1!.data())).toEqual([2, 4]);
    E.dispose([x, loss, kept, g1]);
  });
});

describe('argument rules', () => {
  it('where takes a float32 0/1 mask as its condition and names an int32 one', async () => {
    const a = E.tensor([1, 2, 3]), b = E.tensor([-1, -2, -3]);
    const ci = E.tensor(new Int32Array([1, 0, 1]), [3]);
    expect(() => E.where(ci, a, b)).toThrow(/where: condition of shape \[3\] has dtype int32; a condition is a float32 0\/1 mask/);
    const y = E.where(E.gt(a, 1.5), a, b);
    expect(Array.from(await y.data())).toEqual([-1, 2, 3]);
    E.dispose([a, b, ci, y]);
  });

  it('finite() refuses Infinity and NaN; scalar operands must be numbers but may be infinite as in PyTorch', async () => {
    const x = E.tensor([1, -2]);
    expect(() => E.affine(x, Infinity)).toThrow(/affine: alpha must be a finite number, got Infinity/);
    expect(() => E.affine(x, 1, NaN)).toThrow(/affine: beta must be a finite number, got NaN/);
    expect(() => E.pow(x, -Infinity)).toThrow(/pow: exponent must be a finite number/);
    expect(() => E.add(x, '1' as unknown as number)).toThrow(/add: second operand must be a Tensor or a number, got string 1/);
    expect(() => E.gt(x, undefined as unknown as number)).toThrow(/gt: second operand must be a Tensor or a number/);
    expect(() => E.clamp(x, 'a' as unknown as number)).toThrow(/clamp: min must be a Tensor or a number/);
    const y = E.add(x, Infinity);
    expect(Array.from(await y.data())).toEqual([Infinity, Infinity]);
    E.dispose([x, y]);
  });

  it('squeeze with nothing to squeeze returns a tensor of its own', async () => {
    const x = E.tensor([[1, 2, 3]]);
    const v = E.tensor([1, 2]);
    for (const s of [E.squeeze(x, 1), E.squeeze(v)]) {
      expect(s).not.toBe(x);
      s.dispose();
    }
    const s = E.squeeze(x, 1);
    s.dispose();
    expect(x.isDisposed).toBe(false);
    expect(Array.from(await x.data())).toEqual([1, 2, 3]);
    E.dispose([x, v]);
  });
});

describe('emptyCache', () => {
  it('submits recorded work before destroying pooled buffers that work still reads', async () => {
    const a = E.tensor(Float32Array.from({ length: 4096 }, (_, i) => i));
    const b = E.add(a, 1); // recorded, not yet submitted
    a.dispose(); // a's buffer returns to the pool while b's kernel still has to read it
    E.emptyCache();
    const got = await b.data();
    expect(got[0]).toBe(1);
    expect(got[4095]).toBe(4096);
    b.dispose();
  });
});
