// Every op record's checks, run on the GPU: forward values against the float64 reference, and
// gradients against float64 central finite differences of it, on seeded random shapes. The
// records are the test spec: an op without a check, or a differentiable op without a gradient
// check, fails here.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { Rng, type OpCheck } from '../engine/reference/check.js';
import { expectClose, gpu, toTensor } from './helpers/setup.js';

beforeAll(gpu);

describe('op records', () => {
  it('every op has a check, and every differentiable op a gradient check', () => {
    expect(E.OPS.filter((o) => o.checks.length === 0).map((o) => o.name)).toEqual([]);
    expect(E.OPS.filter((o) => o.differentiable && !o.checks.some((c) => c.grad !== false)).map((o) => o.name)).toEqual([]);
  });

  it('the Tensor methods are the records\' methods, and the typed list names the same ones', () => {
    const fromRecords = E.OPS.flatMap((o) => (o.method ? [o.method] : []));
    for (const m of fromRecords) expect(E.METHODS[m], m).toBe(E.OPS.find((o) => o.method === m)!.fn);
    expect([...E.TYPED_METHOD_NAMES].sort()).toEqual(Object.keys(E.METHODS).sort());
    const x = E.tensor([1, 2]);
    expect((x as unknown as Record<string, unknown>).neg).toBeTypeOf('function');
    x.dispose();
  });
});

/** Case arguments as the op receives them: an Int32Array becomes an int32 tensor. */
const toArgs = (args: unknown[]) => args.map((a) => (a instanceof Int32Array ? E.tensor(a, [a.length], { dtype: 'int32' }) : a));

function run(op: E.RegisteredOp, check: OpCheck, xs: E.Tensor[], args: unknown[]): E.Tensor {
  const a = toArgs(args);
  return check.run ? check.run(op.fn, xs, a) : op.fn(...xs, ...a);
}

E.OPS.forEach((op, k) => op.checks.forEach((check, j) => {
  describe(`${op.name} #${j}`, () => {
    const cases = check.cases(new Rng(1000 + 37 * k + j));
    for (const c of cases) {
      it(`forward ${c.label}`, async () => {
        const y = E.tidy(() => run(op, check, c.inputs.map((a) => toTensor(a)), c.args));
        expectClose(await y.data(), y.shape, check.ref(c.inputs, c.args), check.tol ?? { atol: 1e-5, rtol: 1e-5 }, `${op.name} ${c.label}`);
        y.dispose();
      });
      const gtol = check.grad;
      if (gtol) {
        it(`gradient ${c.label}`, async () => {
          const rng = new Rng(77 + k);
          const which = check.gradInputs ?? c.inputs.map((_, i) => i);
          const w = rng.arr(check.ref(c.inputs, c.args).shape, -1, 1);
          const grads = E.tidy(() => {
            const xs = c.inputs.map((a, i) => toTensor(a, which.includes(i)));
            const loss = E.sum(E.mul(run(op, check, xs, c.args), toTensor(w)));
            return E.grad(loss, which.map((i) => xs[i]!));
          });
          const dot = (xs: R.Arr[]) => check.ref(xs, c.args).data.reduce((s, v, i) => s + v * w.data[i]!, 0);
          const numeric = R.numericGrad(dot, c.inputs.map((a) => ({ shape: a.shape, data: a.data.slice() })));
          for (const [n, i] of which.entries()) {
            expectClose(await grads[n]!.data(), grads[n]!.shape, numeric[i]!, gtol, `d/d input ${i} of ${op.name} ${c.label}`);
          }
          E.dispose(grads);
        });
      }
    }
  });
}));
