// Max and average pooling on float16 storage (issue 14): each forward variant and each gathering
// backward variant forced through the registry, against the float64 reference of the
// float16-rounded inputs; the scattering backward variants ('plane', 'phases') are float32-only
// and never picked for float16.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { halfArr } from '../engine/reference/half.js';
import { gpu, Rng } from './helpers/setup.js';
import { check, forceName, half, HALF_TOL, releaseForced } from './helpers/half.js';

await gpu();
const hasF16 = E.getDevice().features.has('shader-f16');
afterEach(releaseForced);

/** Gradient of sum(g * pool(x)) in float64: each window's share of g goes to its max (first on ties) or spreads evenly. */
function poolGradRef(x: R.Arr, g: R.Arr, kind: 'max' | 'avg', k: number, s: number): R.Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [, , OH, OW] = g.shape as [number, number, number, number];
  const dx = new Float64Array(x.data.length);
  for (let pl = 0; pl < N * C; pl++) for (let oh = 0; oh < OH; oh++) for (let ow = 0; ow < OW; ow++) {
    const gv = g.data[(pl * OH + oh) * OW + ow]!;
    const cells: number[] = [];
    for (let ih = oh * s; ih < Math.min(oh * s + k, H); ih++) for (let iw = ow * s; iw < Math.min(ow * s + k, W); iw++) cells.push((pl * H + ih) * W + iw);
    if (kind === 'avg') { for (const c of cells) dx[c]! += gv / cells.length; continue; }
    let best = cells[0]!;
    for (const c of cells) if (x.data[c]! > x.data[best]!) best = c;
    dx[best]! += gv;
  }
  return R.arr(x.shape, dx);
}

describe.skipIf(!hasF16)('pooling on float16 storage', () => {
  // Sums of a few float16 gradients in f32, rounded once: one float16 ulp, plus an absolute term near zero.
  const GRAD_TOL = { atol: 1e-3, rtol: 2 ** -10 };
  const forwards = ['vec4', 'run4', 'run16', 'grid'];
  const backwards = ['vec4', 'gather', 'vec4', 'gather'];
  for (const kind of ['max', 'avg'] as const) {
    forwards.forEach((fw, i) => {
      const bw = backwards[i]!;
      it(`${kind}: forward ${fw}, backward ${bw}: [2, 3, 8, 8] k3 s2 and k2 s2`, async () => {
        const r = new Rng(31 + i);
        for (const [k, s] of [[3, 2], [2, 2]] as const) {
          forceName('pool.forward', fw);
          forceName('pool.backward', bw);
          const [x, tx] = half(r, [2, 3, 8, 8]);
          tx.requiresGrad = true;
          const y = kind === 'max' ? E.maxPool2d(tx, k, { stride: s }) : E.avgPool2d(tx, k, { stride: s });
          await check(y, R.pool2d(x, kind, k, k, s, s, [0, 0, 0, 0]), HALF_TOL, `${kind} k${k} s${s} y`);
          const g = halfArr(r.arr(y.shape as number[], -1, 1));
          const [dx] = E.grad(y, [tx], E.tensor(Float32Array.from(g.data), g.shape, { dtype: 'float16' }));
          await check(dx!, poolGradRef(x, g, kind, k, s), GRAD_TOL, `${kind} k${k} s${s} dx`);
          releaseForced();
        }
      });
    });
  }
  it('the scattering backward variants are float32-only', () => {
    forceName('pool.backward', 'phases');
    const x = E.zeros([1, 1, 8, 8], { dtype: 'float16' });
    x.requiresGrad = true;
    const y = E.maxPool2d(x, 2);
    expect(() => E.grad(y, [x], E.zeros([1, 1, 4, 4], { dtype: 'float16' }))).toThrow(/pool.backward.*'phases' is forced but runs only on float32 storage/);
  });
});
