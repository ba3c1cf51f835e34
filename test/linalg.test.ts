// matmul's kernels and layouts at sizes beyond the gradient checks: both kernels (vec4 rows
// and general tiles), transposed operands (with and without the layout copy), batch broadcast.
import { beforeAll, describe, it } from 'vitest';
import * as E from '../engine/node.js';
import { matmulKernel } from '../engine/ops/linalg.js';
import * as R from '../engine/reference/float64.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';

beforeAll(gpu);

const T = (a: R.Arr): R.Arr => R.permute(a, [...a.shape.keys()].map((i) => (i === a.shape.length - 2 ? i + 1 : i === a.shape.length - 1 ? i - 1 : i)));

describe('matmul layouts', () => {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[130, 70], [70, 68], false, false], // rows kernel, ragged edges
    [[67, 129], [129, 66], false, false], // general kernel (N % 4 != 0)
    [[70, 130], [70, 68], true, false], // A transposed
    [[70, 68], [130, 68], false, true], // B transposed, large: layout copy then rows kernel
    [[9, 5], [12, 5], false, true], // B transposed, small: general kernel
    [[3, 33, 20], [20, 44], false, false], // batch with shared B
    [[33, 20], [2, 20, 44], false, false], // shared A
    [[2, 40, 33], [2, 36, 40], true, true],
  ];
  for (const [sa, sb, ta, tb] of cases) {
    it(`[${sa}]${ta ? '^T' : ''} x [${sb}]${tb ? '^T' : ''}`, async () => {
      const r = new Rng(sa.length * 100 + sb[0]!);
      const a = r.arr(sa, -1, 1), b = r.arr(sb, -1, 1);
      const c = E.tidy(() => matmulKernel(toTensor(a), toTensor(b), ta, tb));
      const ref = R.matmul(ta ? T(a) : a, tb ? T(b) : b);
      expectClose(await c.data(), c.shape, ref, { atol: 3e-5, rtol: 1e-5 }, 'matmul');
      c.dispose();
    });
  }
});
