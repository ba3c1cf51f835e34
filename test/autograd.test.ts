// Autograd of composite expressions against float64 finite differences, plus the semantics a
// PyTorch user relies on: accumulation, noGrad, functional grad, reused nodes.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';

beforeAll(gpu);

const TOL = { atol: 5e-5, rtol: 5e-4 };

/** Checks engine gradients of a scalar composite f against float64 central differences of fRef. */
async function checkComposite(shapes: number[][], f: (xs: E.Tensor[]) => E.Tensor, fRef: (xs: R.Arr[]) => number, seed: number, range: [number, number] = [-1.5, 1.5]) {
  const rng = new Rng(seed);
  const inputs = shapes.map((s) => rng.arr(s, ...range));
  const grads = E.tidy(() => {
    const xs = inputs.map((a) => toTensor(a, true));
    return E.grad(f(xs), xs);
  });
  const numeric = R.numericGrad(fRef, inputs.map((a) => ({ shape: a.shape, data: a.data.slice() })));
  for (let i = 0; i < inputs.length; i++) expectClose(await grads[i]!.data(), grads[i]!.shape, numeric[i]!, TOL, `input ${i}`);
  E.dispose(grads);
}

const mlpRef = (labels: number[]) => ([x, w1, b1, w2]: R.Arr[]) => {
  const h = R.map(R.zip([R.matmul(x!, w1!), b1!], (a, b) => a + b), Math.tanh);
  const logits = R.matmul(h, w2!);
  return R.mean(R.crossEntropy(logits, labels)).data[0]!;
};

describe('composite gradients (float64 finite differences)', () => {
  it('two-layer tanh MLP with softmax cross-entropy, batch 5', async () => {
    const labels = [0, 2, 1, 1, 0];
    await checkComposite([[5, 7], [7, 6], [6], [6, 3]], ([x, w1, b1, w2]) => {
      const y = E.tensor(Int32Array.from(labels), [5]);
      return E.crossEntropy(E.matmul(E.tanh(E.add(E.matmul(x!, w1!), b1!)), w2!), y);
    }, mlpRef(labels), 1);
  });

  it('batch 1 MLP', async () => {
    await checkComposite([[1, 4], [4, 3], [3], [3, 2]], ([x, w1, b1, w2]) =>
      E.crossEntropy(E.matmul(E.tanh(E.add(E.matmul(x!, w1!), b1!)), w2!), E.tensor(Int32Array.from([1]), [1])), mlpRef([1]), 2);
  });

  it('a node used several times, broadcasting, division and reductions', async () => {
    // f = sum( (x*x + x) / (1 + exp(y)) ) + mean(max(x, 1)) with y broadcast over rows
    await checkComposite([[3, 4], [4]], ([x, y]) => E.add(E.sum(E.div(E.add(E.mul(x!, x!), x!), E.add(E.exp(y!), 1))), E.mean(E.max(x!, 1))),
      ([x, y]) => {
        const num = R.map(x!, (v) => v * v + v);
        const q = R.zip([num, R.map(y!, (v) => 1 + Math.exp(v))], (a, b) => a / b);
        return R.sum(q).data[0]! + R.mean(R.max(x!, [1])).data[0]!;
      }, 3);
  });

  it('softmax, logSoftmax, sigmoid, sqrt, pow, clamp, where, concat, pad, slice and permute together', async () => {
    await checkComposite([[2, 3], [2, 3]], ([a, b]) => {
      const s = E.softmax(a!, 0);
      const l = E.logSoftmax(E.concat([a!, b!], 1), -1);
      const m = E.where(E.gt(a!, 0), E.sigmoid(b!), E.pow(E.clamp(b!, -1, 1), 3));
      const p = E.slice(E.pad(E.permute(m, [1, 0]), [[1, 0], [0, 2]]), [1, 0], [4, 2]);
      return E.add(E.add(E.sum(E.mul(s, b!)), E.mean(l)), E.sum(E.mul(p, E.sqrt(E.add(E.square(a!), 1)).transpose())));
    }, ([a, b]) => {
      const s = R.permute(R.softmax(R.permute(a!, [1, 0])), [1, 0]);
      const l = R.softmax(R.concat([a!, b!], 1), true);
      const m = R.zip([a!, b!], (x, y) => (x > 0 ? 1 / (1 + Math.exp(-y)) : Math.max(-1, Math.min(1, y)) ** 3));
      const p = R.slice(R.pad(R.permute(m, [1, 0]), [[1, 0], [0, 2]], 0), [1, 0], [4, 2]);
      const q = R.permute(R.map(a!, (v) => Math.sqrt(v * v + 1)), [1, 0]);
      return R.sum(R.zip([s, b!], (x, y) => x * y)).data[0]! + R.mean(l).data[0]! + R.sum(R.zip([p, q], (x, y) => x * y)).data[0]!;
    }, 4, [-2, 2]);
  });
});

describe('autograd semantics', () => {
  it('backward() accumulates into .grad of leaves and zeroing works', async () => {
    const x = E.tensor([1.5, -2, 3], undefined, { requiresGrad: true });
    E.tidy(() => E.sum(E.mul(x, x)).backward());
    expect(Array.from(await x.grad!.data())).toEqual([3, -4, 6]);
    E.tidy(() => E.sum(E.mul(x, 3)).backward());
    expect(Array.from(await x.grad!.data())).toEqual([6, -1, 9]);
    x.grad!.dispose(); x.grad = null;
    x.dispose();
  });

  it('grad() returns input gradients without touching parameter .grad', async () => {
    const w = E.tensor([[0.5, -1], [2, 0.25]], undefined, { requiresGrad: true });
    const x = E.tensor([[1, 2]], undefined, { requiresGrad: true });
    const [gx] = E.tidy(() => E.grad(E.sum(E.matmul(x, w)), [x]));
    expect(w.grad).toBeNull();
    expect(Array.from(await gx!.data())).toEqual([-0.5, 2.25]);
    E.dispose([w, x, gx]);
  });

  it('noGrad() records nothing', () => {
    const x = E.tensor([1, 2], undefined, { requiresGrad: true });
    const y = E.noGrad(() => E.mul(x, 2));
    expect(y.requiresGrad).toBe(false);
    expect(y.node).toBeNull();
    expect(() => y.backward()).toThrow(/does not require grad/);
    E.dispose([x, y]);
  });

  it('backward with an explicit gradient for a non-scalar output', async () => {
    const x = E.tensor([1, 2, 3], undefined, { requiresGrad: true });
    const g = E.tensor([1, 0.5, -1]);
    E.tidy(() => E.mul(x, x).backward(g));
    expect(Array.from(await x.grad!.data())).toEqual([2, 2, -6]);
    E.dispose([x, g]);
  });

  it('detach() keeps the values and stops the gradient', async () => {
    const x = E.tensor([1, 2], undefined, { requiresGrad: true });
    const y = E.mul(x, 2);
    const d = E.detach(y);
    expect(d.requiresGrad).toBe(false);
    expect(d.node).toBeNull();
    expect(Array.from(await d.data())).toEqual([2, 4]);
    // d(sum(d * x))/dx is d = 2x when d is a constant; through the graph it would be 4x.
    const [g] = E.tidy(() => E.grad(E.sum(E.mul(d, x)), [x]));
    expect(Array.from(await g!.data())).toEqual([2, 4]);
    // Disposing the detached tensor leaves the original alone.
    d.dispose();
    expect(Array.from(await y.data())).toEqual([2, 4]);
    E.dispose([x, y, g]);
  });
});

describe('values changed in place between forward and backward (version counters)', () => {
  const rng = new Rng(31);
  const t = (s: number[], requiresGrad = false) => toTensor(rng.arr(s, -1, 1), requiresGrad);

  it('refuses a backward that reads an input assign() changed, and allows one that does not read it (add), as PyTorch', async () => {
    const live = E.memory().tensors;
    E.tidy(() => {
      const p = t([3, 5], true), x = t([3, 5]);
      const v0 = x.version;
      const y = E.sum(E.mul(p, x));
      E.noGrad(() => x.assign(E.mul(x, 2)));
      expect(x.version).not.toBe(v0);
      expect(() => y.backward()).toThrow(/backward: mul needs the values its input 1 \(shape \[3, 5\]\) had in the forward pass, but they were changed in place since/);
    });
    expect(E.memory().tensors, 'a refused backward frees what it made').toBe(live);
    const [gp, expected] = await E.tidy(() => {
      const p = t([4], true), x = t([4]);
      const y = E.sum(E.mul(E.add(p, x), 3));
      E.noGrad(() => x.assign(E.neg(x))); // add's backward reads no values: PyTorch differentiates too
      return [E.grad(y, [p])[0]!, E.full([4], 3)];
    });
    expectClose(await gp.data(), gp.shape, R.arr([4], Array.from(await expected.data())), TOL, 'add through a changed input');
    E.dispose([gp, expected]);
  });

  it('reads only what the wanted gradients need: a changed parameter does not block the gradient that reads the data alone', async () => {
    const rng2 = new Rng(8);
    const wv = rng2.arr([3, 4], -1, 1), xv = rng2.arr([4, 2], -1, 1), ev = rng2.arr([3, 4], -1, 1);
    const [gm, gw, ones] = E.tidy(() => {
      const w = toTensor(wv, true), x = toTensor(xv), e = toTensor(ev);
      const ym = E.sum(E.mul(w, e)), yw = E.sum(E.matmul(w, x));
      E.noGrad(() => w.assign(E.mul(w, -3))); // e.g. an optimiser step
      // d/dw reads e (mul) and x (matmul), never w: PyTorch differentiates these too.
      return [E.grad(ym, [w])[0]!, E.grad(yw, [w])[0]!, E.ones([2])];
    });
    expectClose(await gm.data(), gm.shape, ev, TOL, 'd sum(w * e) / dw = e');
    expectClose(await gw.data(), gw.shape, R.matmul(R.arr([3, 2], new Array(6).fill(1)), R.arr([2, 4], Array.from({ length: 8 }, (_, k) => xv.data[(k % 4) * 2 + Math.floor(k / 4)]!))), TOL, 'd sum(w x) / dw = 1 x^T');
    E.dispose([gm, gw, ones]);
    E.tidy(() => {
      const w = t([3, 4]), x = t([4, 2], true);
      const y = E.sum(E.matmul(w, x));
      E.noGrad(() => w.assign(E.neg(w)));
      expect(() => E.grad(y, [x])).toThrow(/matmul needs the values its input 0 \(shape \[3, 4\]\)/);
    });
  });

  it('sees writes through views and in-place kernels: an optimiser step before a second backward of a retained graph', () => {
    E.tidy(() => {
      // x needs a gradient, which reads w (through the reshape's view of its storage).
      const w = t([2, 6], true), x = t([6, 3], true);
      const y = E.sum(E.square(E.matmul(E.reshape(w, [2, 6]), x)));
      y.backward(undefined, { retainGraph: true });
      const m = E.zeros([2, 6]), v = E.zeros([2, 6]);
      E.adamUpdate(w, w.grad!, m, v, { lrT: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-7 });
      expect(() => y.backward()).toThrow(/backward: (matmul|reshape) needs the values its input 0 \(shape \[2, 6\]\)/);
    });
  });

  it('a training-mode batch norm changes the running statistics an eval-mode graph saved; training-mode nodes never read them', async () => {
    E.tidy(() => {
      const x = toTensor(rng.arr([2, 3, 4, 4], -1, 1)), g = t([3], true), b = t([3], true);
      const rm = toTensor(rng.arr([3], -0.2, 0.2)), rv = toTensor(rng.arr([3], 0.5, 1.5));
      const evalOut = E.sum(E.batchNorm2d(x, g, b, rm, rv, { training: false }));
      // The same layer twice in training mode (a shared module): each updates rm and rv in place.
      const train = E.sum(E.add(E.batchNorm2d(x, g, b, rm, rv, { training: true }), E.batchNorm2d(E.mul(x, 2), g, b, rm, rv, { training: true })));
      expect(() => E.grad(train, [g, b])).not.toThrow();
      expect(() => E.grad(evalOut, [g])).toThrow(/backward: batchNorm2d needs the values its saved tensor \(shape \[3\]\) had in the forward pass/);
    });
  });
});

describe('creation and aliases', () => {
  it('fromArray, fromTypedArray and clip', async () => {
    const a = E.fromArray([1, -2, 3, -4], [2, 2]);
    const b = E.fromTypedArray(Int32Array.from([7, 8]), [2]);
    expect(b.dtype).toBe('int32');
    expect(await a.clip(-1, 2).toArray()).toEqual([[1, -1], [2, -1]]);
    expect(Array.from(await b.data())).toEqual([7, 8]);
    E.dispose([a, b]);
  });
});
