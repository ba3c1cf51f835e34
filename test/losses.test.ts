// Losses at any logit margin: cross-entropy's forward and backward against float64 from margin 0
// to 200 (where a plain softmax - onehot rounds the label's term to exactly 0), and the attack
// losses (margin, DLR, targeted DLR) against float64 values and gradients.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu, Rng } from './helpers/setup.js';
import { LinearClassifier } from './helpers/linear.js';
import { dlrLoss, dlrTargetedLoss, marginLoss } from '../experiments/attacks/losses.js';
import { freeze } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackConfig } from '../experiments/attacks/spec.js';

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

describe('attack losses', () => {
  it('margin, DLR and targeted DLR losses and their gradients match float64 (with finite differences); DLR refuses 2 classes', async () => {
    const rng = new Rng(9);
    for (const k of [3, 5]) {
      const n = 5;
      const z = rng.arr([n, k], -3, 3);
      const y = Array.from({ length: n }, () => rng.int(0, k - 1));
      const t = y.map((v) => (v + 1 + rng.int(0, k - 2)) % k);
      const sorted = (zz: number[]) => [...zz].sort((p, q) => q - p);
      const other = (zz: number[], label: number) => Math.max(...zz.filter((_, c) => c !== label));
      const refs: Array<[string, (zz: number[], i: number) => number, (zt: E.Tensor, yt: E.Tensor, tt: E.Tensor) => E.Tensor]> = [
        ['margin', (zz, i) => other(zz, y[i]!) - zz[y[i]!]!, (zt, yt) => marginLoss(zt, yt)],
        ['dlr', (zz, i) => -(zz[y[i]!]! - other(zz, y[i]!)) / (sorted(zz)[0]! - sorted(zz)[2]! + 1e-12), (zt, yt) => dlrLoss(zt, yt)],
        ['targeted dlr', (zz, i) => {
          const s4 = sorted(zz);
          const low = k >= 4 ? (s4[2]! + s4[3]!) / 2 : s4[2]!;
          return -(zz[y[i]!]! - zz[t[i]!]!) / (s4[0]! - low + 1e-12);
        }, (zt, yt, tt) => dlrTargetedLoss(zt, yt, tt)],
      ];
      for (const [name, f64, f32] of refs) {
        const zt = E.tensor(Float32Array.from(z.data), [n, k], { requiresGrad: true });
        const yt = E.tensor(Int32Array.from(y), [n], { dtype: 'int32' });
        const tt = E.tensor(Int32Array.from(t), [n], { dtype: 'int32' });
        const loss = f32(zt, yt, tt);
        const [g] = E.grad(E.sum(loss), [zt]);
        const [lv, gv] = await Promise.all([loss.data(), g!.data()]);
        for (let i = 0; i < n; i++) {
          const row = Array.from(z.data.slice(i * k, (i + 1) * k));
          expect(lv[i]!, `${name} (${k} classes) sample ${i}`).toBeCloseTo(f64(row, i), 5);
          for (let c = 0; c < k; c++) {
            const h = 1e-6, up = [...row], dn = [...row];
            up[c]! += h; dn[c]! -= h;
            expect(gv[i * k + c]!, `d ${name} / d z[${i}, ${c}] (${k} classes)`).toBeCloseTo((f64(up, i) - f64(dn, i)) / (2 * h), 3);
          }
        }
        E.dispose([zt, yt, tt, loss, g!]);
      }
    }
    const two = E.zeros([3, 2]);
    const labels = E.tensor([0, 1, 0], [3], { dtype: 'int32' });
    expect(() => dlrLoss(two, labels)).toThrow(/DLR loss needs at least 3 classes.*this model has 2. Use the margin or CE loss/);
    expect(() => dlrTargetedLoss(two, labels, labels)).toThrow(/targeted DLR loss needs at least 3 classes/);
    E.dispose([two, labels]);
  });

  it('breaks a model built to saturate (logit margin 40) exactly where float64 says it must', async () => {
    // Two classes; w0 = 2 delta s, w1 = delta s: the margin's gradient is -delta s, while the other
    // class alone (all that survives of softmax - onehot once p_y rounds to 1) points along +s.
    const d = 48, n = 5, delta = 40 * 255 / 8 / d;
    const rng = new Rng(4);
    const sgn = Array.from({ length: d }, () => (rng.next() < 0.5 ? -1 : 1));
    const model = new LinearClassifier(d, 2, 1);
    const w = [...sgn.map((v) => 2 * delta * v), ...sgn.map((v) => delta * v)];
    // Images around 0.5 with noise orthogonal to s, so that every image has the same margin.
    const half = sgn.reduce((acc, v) => acc + 0.5 * v, 0);
    const xs = Array.from({ length: n }, () => {
      const r = Array.from({ length: d }, () => rng.uniform(-0.15, 0.15));
      const along = r.reduce((acc, v, j) => acc + v * sgn[j]!, 0) / d;
      return r.map((v, j) => Math.fround(0.5 + v - along * sgn[j]!));
    }).flat();
    const bias = 40 - delta * half;
    E.noGrad(() => { model.fc.weight.assign(E.tensor(Float32Array.from(w), [2, d])); model.fc.bias.assign(E.tensor([bias, 0], [2])); });
    const margins = Array.from({ length: n }, (_, i) => sgn.reduce((acc, v, j) => acc + delta * v * xs[i * d + j]!, 0) + bias);
    margins.forEach((m) => expect(m).toBeCloseTo(40, 2));
    const restore = freeze(model);
    const x = E.tensor(Float32Array.from(xs), [n, 1, 3, d / 3]);
    const y = E.tensor(new Int32Array(n), [n], { dtype: 'int32' });
    for (const name of ['fgsm', 'pgd', 'apgd-ce', 'apgd-margin']) {
      for (const eps255 of [6, 10, 14]) {
        const eps = eps255 / 255;
        // The best L-inf perturbation lowers the margin by eps * ||w0 - w1||_1 (no pixel reaches 0 or 1 here).
        const breakable = margins.map((m) => m - eps * delta * d < 0);
        const p = perturb(model, x, y, null, attackConfig(name, { steps: name === 'fgsm' ? 1 : 10 }), eps, new E.Generator(2));
        const top = E.argmax(p.logits, -1);
        const pred = Array.from(await top.data());
        top.dispose();
        expect(pred.map((v) => v === 1), `${name} at ${eps255}/255 (margins ${margins.map((m) => m.toFixed(1)).join(', ')})`).toEqual(breakable);
        E.dispose(p);
      }
    }
    restore();
    E.dispose([x, y]); model.dispose();
  });
});
