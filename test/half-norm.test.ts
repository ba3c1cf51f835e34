// Batch norm (+ReLU +residual) on float16 activations (issue 14, mixed precision): every
// variant of its reductions and passes forced through the registry, training mode, against the
// float64 reference of the float16-rounded inputs; weight, bias, running and batch statistics
// stay float32. Gradients against float64 central differences of the reference.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { halfArr } from '../engine/reference/half.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';
import { check, forceName, half, releaseForced } from './helpers/half.js';

await gpu();
const hasF16 = E.getDevice().features.has('shader-f16');
afterEach(releaseForced);

// Values of order 1: the float16 output's rounding (2^-10 relative here) and, for dx, the
// cancellation in dy - mean(dy) - xhat mean(dy xhat) computed from float16 dy.
const Y_TOL = { atol: 2e-3, rtol: 2 ** -10 };
const DX_TOL = { atol: 4e-3, rtol: 4e-3 };
const PARAM_TOL = { atol: 2e-3, rtol: 1e-3 };

const combos: Array<[string, string, string, number[]]> = [
  ['split4', 'split4', 'channel4', [2, 3, 4, 4]], ['split', 'split', 'vec4', [2, 3, 4, 4]],
  ['single4', 'single', 'scalar', [2, 3, 4, 4]], ['single', 'split', 'scalar', [3, 2, 3, 3]],
  ['split', 'split', 'channel1', [3, 2, 7, 7]],
];

describe.skipIf(!hasF16)('batch norm on float16 activations', () => {
  for (const [stats, sums, pass, xs] of combos) {
    for (const residual of [false, true]) {
      it(`stats ${stats}, sums ${sums}, passes ${pass}: batchNormRelu2d [${xs}]${residual ? ' +residual' : ''}, training`, async () => {
        const r = new Rng(21 + xs[0]! + (residual ? 7 : 0));
        forceName('batchnorm.stats', stats);
        forceName('batchnorm.sums', sums);
        forceName('batchnorm.apply', pass);
        forceName('batchnorm.backward', pass);
        const C = xs[1]!;
        const [x, tx] = half(r, xs, -2, 3);
        const gamma = r.arr([C], 0.5, 1.5), beta = r.arr([C], -1, 1);
        const [res, tres] = half(r, xs, -1, 1);
        const tg = toTensor(gamma, true), tb = toTensor(beta, true);
        const rm = E.zeros([C]), rv = E.ones([C]);
        tx.requiresGrad = tres.requiresGrad = true;
        const y = E.batchNormRelu2d(tx, tg, tb, rm, rv, residual ? tres : null, { training: true, eps: 1e-3, momentum: 0.1 });
        const ref = (a: R.Arr[]) => {
          const z = R.batchNorm(a[0]!, a[1]!, a[2]!, 1e-3).y;
          return R.map(residual ? R.zip([z, a[3]!], (p, q) => p + q) : z, (t) => Math.max(t, 0));
        };
        const inputs = [x, gamma, beta, ...(residual ? [res] : [])];
        await check(y, ref(inputs), Y_TOL, 'y');
        // Running statistics: float32, updated from the batch's float32 statistics.
        const { mean, varBiased } = R.batchNorm(x, gamma, beta, 1e-3);
        const n = xs[0]! * xs[2]! * xs[3]!;
        expectClose(await rm.data(), [C], R.arr([C], mean.map((m) => 0.1 * m)), { atol: 1e-5, rtol: 1e-5 }, 'running mean');
        expectClose(await rv.data(), [C], R.arr([C], varBiased.map((v) => 0.9 + 0.1 * v * n / (n - 1))), { atol: 1e-5, rtol: 1e-5 }, 'running var');
        const g = halfArr(r.arr(y.shape as number[], -1, 1));
        const wrt = [tx, tg, tb, ...(residual ? [tres] : [])];
        const grads = E.grad(y, wrt, E.tensor(Float32Array.from(g.data), g.shape, { dtype: 'float16' }));
        const numeric = R.numericGrad((a) => ref(a).data.reduce((s, v, i) => s + v * g.data[i]!, 0), inputs.map((a) => ({ shape: a.shape, data: a.data.slice() })));
        await check(grads[0]!, numeric[0]!, DX_TOL, 'dx');
        expect(grads[1]!.dtype).toBe('float32');
        expectClose(await grads[1]!.data(), [C], numeric[1]!, PARAM_TOL, 'dweight');
        expectClose(await grads[2]!.data(), [C], numeric[2]!, PARAM_TOL, 'dbias');
        if (residual) await check(grads[3]!, numeric[3]!, DX_TOL, 'dresidual');
      });
    }
  }

  it('refuses a float32 residual for a float16 input', () => {
    const x = E.zeros([2, 2, 2, 2], { dtype: 'float16' });
    expect(() => E.batchNormRelu2d(x, E.ones([2]), E.zeros([2]), E.zeros([2]), E.ones([2]), E.zeros([2, 2, 2, 2]), { training: true }))
      .toThrow(/residual of shape \[2, 2, 2, 2\] is float32 but the input is float16/);
  });
});
