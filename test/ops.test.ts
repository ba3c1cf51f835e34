// Every op of the engine against the float64 reference: forward values, and gradients against
// float64 central finite differences of the reference, on seeded random shapes.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from './helpers/reference.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';
import { SPECS } from './helpers/specs.js';

beforeAll(gpu);

describe('op table coverage', () => {
  it('has a reference test for every op the engine registers', () => {
    const tested = new Set(SPECS.map((s) => s.op));
    const missing = E.opRegistry.map((o) => o.name).filter((n) => !tested.has(n));
    expect(missing).toEqual([]);
    const gradTested = new Set(SPECS.filter((s) => s.grad !== false).map((s) => s.op));
    expect(E.opRegistry.filter((o) => o.differentiable && !gradTested.has(o.name)).map((o) => o.name)).toEqual([]);
  });
});

SPECS.forEach((spec, k) => {
  describe(`${spec.op} #${k}`, () => {
    const cases = spec.cases(new Rng(1000 + k));
    for (const c of cases) {
      it(`forward ${c.label}`, async () => {
        const y = E.tidy(() => spec.run(c.inputs.map((a) => toTensor(a)), c.args));
        const expected = spec.ref(c.inputs, c.args);
        expectClose(await y.data(), y.shape, expected, spec.tol ?? { atol: 1e-5, rtol: 1e-5 }, `${spec.op} ${c.label}`);
        y.dispose();
      });
      const gtol = spec.grad;
      if (gtol) {
        it(`gradient ${c.label}`, async () => {
          const rng = new Rng(77 + k);
          const which = spec.gradInputs ?? c.inputs.map((_, i) => i);
          const expectedOut = spec.ref(c.inputs, c.args);
          const w = rng.arr(expectedOut.shape, -1, 1);
          const grads = E.tidy(() => {
            const xs = c.inputs.map((a, i) => toTensor(a, which.includes(i)));
            const loss = E.sum(E.mul(spec.run(xs, c.args), toTensor(w)));
            return E.grad(loss, which.map((i) => xs[i]!));
          });
          const dot = (xs: R.Arr[]) => { const y = spec.ref(xs, c.args); return y.data.reduce((s, v, i) => s + v * w.data[i]!, 0); };
          const inputs = c.inputs.map((a) => ({ shape: a.shape, data: a.data.slice() }));
          const numeric = R.numericGrad(dot, inputs);
          for (const [j, i] of which.entries()) {
            expectClose(await grads[j]!.data(), grads[j]!.shape, numeric[i]!, gtol, `d/d input ${i} of ${spec.op} ${c.label}`);
          }
          E.dispose(grads);
        });
      }
    }
  });
});
