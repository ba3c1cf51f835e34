// Losses at any logit margin: cross-entropy's forward and backward against float64 from margin 0
// to 200 (where a plain softmax - onehot rounds the label's term to exactly 0), and the attack
// losses (margin, DLR, targeted DLR) against float64 values and gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu, Rng } from './helpers/setup.js';

beforeAll(gpu);

/** float64 cross-entropy and its gradient in the logits, computed without cancellation. */
function ce64(z: readonly number[], y: number): { loss: number; grad: number[] } {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, v) => a + v, 0);
  const others = e.reduce((a, v, k) => (k === y ? a : a + v), 0);
  const loss = z[y] === m ? Math.log1p(others) : m - z[y]! + Math.log(s);
  return { loss, grad: e.map((v, k) => (k === y ? -others / s : v / s)) };
}

/** Logits with the label's logit `margin` above the largest other (random others, odd class counts). */
function logitsAt(rng: Rng, margins: readonly number[], classes: number): { z: Float32Array; y: Int32Array } {
  const n = margins.length;
  const z = new Float32Array(n * classes), y = new Int32Array(n);
  margins.forEach((margin, i) => {
    y[i] = rng.int(0, classes - 1);
    const others = Array.from({ length: classes }, () => Math.fround(rng.uniform(-3, 3)));
    others.forEach((v, k) => { z[i * classes + k] = v; });
    const top = Math.max(...others.filter((_, k) => k !== y[i]));
    z[i * classes + y[i]!] = Math.fround(top + margin);
  });
  return { z, y };
}

describe('cross-entropy stays exact at any margin', () => {
  for (const classes of [2, 5]) {
    it(`forward and backward match float64 at margins -30..200 (${classes} classes)`, async () => {
      const margins = [-30, -5, -1, 0, 0.5, 3, 10, 16, 17, 20, 30, 40, 60, 80, 87, 95, 103, 120, 200];
      const { z, y } = logitsAt(new Rng(classes), margins, classes);
      const n = margins.length;
      const logits = E.tensor(z, [n, classes], { requiresGrad: true });
      const labels = E.tensor(y, [n], { dtype: 'int32' });
      const loss = E.crossEntropy(logits, labels, { reduction: 'none' });
      const g = E.randn([n], { generator: new E.Generator(3) }); // a random upstream gradient
      const [dz] = E.grad(E.sum(E.mul(loss, E.abs(g))), [logits]);
      const [l, d, gs] = await Promise.all([loss.data(), dz!.data(), E.abs(g).data()]);
      for (let i = 0; i < n; i++) {
        const row = Array.from(z.slice(i * classes, (i + 1) * classes));
        const ref = ce64(row, y[i]!);
        const at = `margin ${margins[i]}`;
        // Relative accuracy wherever float32 can hold the value, exact zero only where it cannot.
        if (Math.fround(ref.loss) !== 0 && ref.loss > 1e-37) expect(Math.abs(l[i]! - ref.loss) / ref.loss, `${at}: loss ${l[i]} vs ${ref.loss}`).toBeLessThan(2e-5);
        else expect(l[i], at).toBeLessThan(1e-37);
        for (let k = 0; k < classes; k++) {
          const want = ref.grad[k]! * gs[i]!, got = d[i * classes + k]!;
          if (Math.abs(want) > 1e-36) {
            expect(Math.sign(got), `${at}, class ${k}: gradient ${got} vs ${want}`).toBe(Math.sign(want));
            expect(Math.abs(got - want) / Math.abs(want), `${at}, class ${k}: gradient ${got} vs ${want}`).toBeLessThan(1e-4);
          } else expect(Math.abs(got), `${at}, class ${k}`).toBeLessThan(1e-35);
        }
      }
      E.dispose([logits, labels, loss, g, dz!]);
    });
  }
});
