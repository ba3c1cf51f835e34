// The channel-blocked layout (engine/ops/layout.ts): every record's checks as test/ops.test.ts
// runs them (forward against the float64 reference, gradients against float64 central
// differences), with each variant of the blocked convolution forced through the registry; the
// round trip; running statistics; refusals.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import * as B from '../engine/reference/layout.js';
import { Rng, type OpCheck } from '../engine/reference/check.js';
import { blockedBatchNormRelu2d, blockedConv2d, blockWeights, fromBlocked, toBlocked } from '../engine/ops/layout.js';
import { BLOCKED_CONV } from '../engine/ops/layout-kernels.js';
import { expectClose, gpu, toTensor } from './helpers/setup.js';

beforeAll(gpu);

const NAMES = ['toBlocked', 'fromBlocked', 'blockWeights', 'blockedConv2d', 'blockedBatchNormRelu2d'];
const forcing: Record<string, { kernel: string; variants: string[] }> = {
  blockedConv2d: { kernel: BLOCKED_CONV.name, variants: BLOCKED_CONV.variants.map((v) => v.name) },
};

function run(op: E.RegisteredOp, check: OpCheck, xs: E.Tensor[], args: unknown[]): E.Tensor {
  return check.run ? check.run(op.fn, xs, args) : op.fn(...xs, ...args);
}

E.OPS.filter((o) => NAMES.includes(o.name)).forEach((op, k) => op.checks.forEach((check, j) => {
  const f = forcing[op.name];
  for (const variant of f ? f.variants : [null]) {
    describe(`${op.name} #${j}${variant ? ` forced ${variant}` : ''}`, () => {
      for (const c of check.cases(new Rng(2000 + 37 * k + j))) {
        it(`forward ${c.label}`, async () => {
          if (f) E.getEngine().policy.force(f.kernel, variant);
          try {
            const y = E.tidy(() => run(op, check, c.inputs.map((a) => toTensor(a)), c.args));
            expectClose(await y.data(), y.shape, check.ref(c.inputs, c.args), check.tol ?? { atol: 1e-5, rtol: 1e-5 }, `${op.name} ${c.label}`);
            y.dispose();
          } finally {
            if (f) E.getEngine().policy.force(f.kernel, null);
          }
        });
        const gtol = check.grad;
        if (gtol) {
          it(`gradient ${c.label}`, async () => {
            const w = new Rng(77 + k).arr(check.ref(c.inputs, c.args).shape, -1, 1);
            const grads = E.tidy(() => {
              const xs = c.inputs.map((a) => toTensor(a, true));
              return E.grad(E.sum(E.mul(run(op, check, xs, c.args), toTensor(w))), xs);
            });
            const dot = (xs: R.Arr[]) => check.ref(xs, c.args).data.reduce((s, v, i) => s + v * w.data[i]!, 0);
            const numeric = R.numericGrad(dot, c.inputs.map((a) => ({ shape: a.shape, data: a.data.slice() })));
            for (const [i, g] of grads.entries()) expectClose(await g!.data(), g!.shape, numeric[i]!, gtol, `d/d input ${i} of ${op.name} ${c.label}`);
            E.dispose(grads);
          });
        }
      }
    });
  }
}));

describe('blocked layout', () => {
  it('declares its five records', () => {
    expect(E.OPS.filter((o) => NAMES.includes(o.name)).map((o) => o.name)).toEqual(NAMES);
  });

  it('round-trips NCHW -> blocked -> NCHW exactly, with zero padding lanes', async () => {
    const r = new Rng(5);
    for (const s of [[1, 3, 5, 7], [2, 6, 4, 4], [1, 16, 8, 8]]) {
      const x = r.arr(s);
      const [b, back] = E.tidy(() => { const t = toTensor(x); const b = toBlocked(t); return [b, fromBlocked(b, s[1]!)]; });
      expect(Array.from(await back.data())).toEqual(Array.from(x.data));
      const bd = await b.data();
      // Element i is lane i % 4 of block (i / (4 H W)) % Cb: channel 4 block + lane.
      const pad = Array.from(bd).filter((_, i) => (Math.floor(i / (4 * s[2]! * s[3]!)) % b.shape[1]!) * 4 + (i % 4) >= s[1]!);
      expect(pad.length).toBe(s[0]! * (4 * b.shape[1]! - s[1]!) * s[2]! * s[3]!);
      expect(pad.every((v) => v === 0)).toBe(true);
      E.dispose([b, back]);
    }
  });

  it('conv -> BN -> ReLU in the blocked layout matches the NCHW ops, and updates the running statistics as batchNorm2d does', async () => {
    const r = new Rng(9);
    const [N, C, H, W, Co] = [2, 6, 9, 10, 7];
    const x = r.arr([N, C, H, W], -1, 1), w = r.arr([Co, C, 3, 3], -0.5, 0.5);
    const g = r.arr([Co], 0.5, 1.5), bt = r.arr([Co], -1, 1), m = r.arr([Co], -0.5, 0.5), v = r.arr([Co], 0.5, 2);
    const run = (blocked: boolean) => E.tidy(() => {
      const [rm, rv] = [toTensor(m), toTensor(v)];
      const opts = { eps: 1e-3, momentum: 0.2 };
      const y = blocked
        ? fromBlocked(blockedBatchNormRelu2d(blockedConv2d(toBlocked(toTensor(x)), blockWeights(toTensor(w)), { padding: 1, stride: 2 }), Co, toTensor(g), toTensor(bt), rm, rv, opts), Co)
        : E.batchNormRelu2d(E.conv2d(toTensor(x), toTensor(w), undefined, { padding: 1, stride: 2 }), toTensor(g), toTensor(bt), rm, rv, null, { ...opts, training: true });
      return [y, rm, rv];
    });
    const a = run(true), b = run(false);
    for (let i = 0; i < 3; i++) expectClose(await a[i]!.data(), a[i]!.shape, R.arr(b[i]!.shape as number[], await b[i]!.data()), { atol: 2e-5, rtol: 2e-5 }, `output ${i}`);
    E.dispose([a, b]);
  });

  it('the float64 reference of the weights round-trips', () => {
    const w = new Rng(3).arr([5, 7, 3, 2]);
    expect(Array.from(B.unblockWeights(B.blockWeights(w), 5, 7).data)).toEqual(Array.from(w.data));
  });

  it('refuses wrong shapes and inputs that need gradients, naming the op', () => {
    E.tidy(() => {
      const x = E.zeros([1, 2, 3, 3, 4]);
      expect(() => fromBlocked(x, 9)).toThrow(/fromBlocked: 9 channels do not fill the 2 blocks/);
      expect(() => toBlocked(E.zeros([2, 3]))).toThrow(/toBlocked: input must be NCHW/);
      expect(() => blockedConv2d(x, E.zeros([1, 4, 3, 3, 4]))).toThrow(/blockedConv2d: input \[1, 2, 3, 3, 4\] has 2 channel blocks but weight/);
      expect(() => blockedConv2d(E.zeros([1, 2, 3, 3]), E.zeros([1, 8, 3, 3, 4]))).toThrow(/blockedConv2d: input must be channel-blocked/);
      const xg = E.zeros([1, 1, 3, 3, 4], { requiresGrad: true });
      expect(() => blockedConv2d(xg, E.zeros([1, 4, 3, 3, 4]))).toThrow(/blockedConv2d has no backward/);
      expect(() => blockedBatchNormRelu2d(x, 6, E.ones([5]), E.zeros([6]), E.zeros([6]), E.ones([6]))).toThrow(/weight of shape \[5\] does not match 6 channels/);
    });
  });
});
