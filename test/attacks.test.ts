// Attacks: FGSM, PGD and APGD (CE and margin losses, best iterate, restarts) against float64
// re-implementations on a linear classifier (whose input gradient has a closed form), frozen
// weights, flat memory, the cost of a step, and epsilon parsing and attack names.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { LinearClassifier } from './helpers/linear.js';
import { createModel } from '../nn/models.js';
import { freeze, inputGradient } from '../experiments/attacks/gradient.js';
import { keepWorst, perturb, perturbAsync } from '../experiments/attacks/pgd.js';
import { checkpoints } from '../experiments/attacks/apgd.js';
import { attackConfig, formatEps, parseEps, type AttackSpec } from '../experiments/attacks/spec.js';
import { gpu, Rng } from './helpers/setup.js';

beforeAll(gpu);


/** The float64 world: logits = W x + b per sample; objective CE(y) or -CE(target); its gradient in x. */
function reference(W: number[], b: number[], k: number, d: number) {
  const logits = (x: ArrayLike<number>) => Array.from({ length: k }, (_, c) => b[c]! + Array.from({ length: d }, (_, j) => W[c * d + j]! * x[j]!).reduce((s, v) => s + v, 0));
  const softmax = (z: number[]) => { const m = Math.max(...z); const e = z.map((v) => Math.exp(v - m)); const s = e.reduce((a, v) => a + v, 0); return e.map((v) => v / s); };
  /** Objective and gradient for one sample: ascend CE(label) (sign +1) or -CE(label) (sign -1). */
  const objGrad = (x: ArrayLike<number>, label: number, sign: number) => {
    const z = logits(x), p = softmax(z);
    const ce = -Math.log(p[label]!);
    const g = Array.from({ length: d }, (_, j) => sign * p.reduce((s, pc, c) => s + (pc - (c === label ? 1 : 0)) * W[c * d + j]!, 0));
    return { obj: sign * ce, g, pred: z.indexOf(Math.max(...z)) };
  };
  /** The Carlini-Wagner margin max_{k != label} z_k - z_label and its gradient. */
  const marginGrad = (x: ArrayLike<number>, label: number) => {
    const z = logits(x);
    const other = z.map((v, c) => (c === label ? -Infinity : v));
    const top = other.indexOf(Math.max(...other));
    const g = Array.from({ length: d }, (_, j) => W[top * d + j]! - W[label * d + j]!);
    return { obj: z[top]! - z[label]!, g, pred: z.indexOf(Math.max(...z)) };
  };
  return { logits, objGrad, marginGrad };
}

async function setup(n: number, d: number, k: number, seed: number) {
  const rng = new Rng(seed);
  const model = new LinearClassifier(d, k, seed);
  const bias = rng.arr([k], -0.5, 0.5);
  E.noGrad(() => model.fc.bias.assign(E.tensor(Float32Array.from(bias.data), [k])));
  const W = Array.from(await model.fc.weight.data()), b = Array.from(await model.fc.bias.data());
  const xs = rng.arr([n, 1, 3, d / 3], 0, 1);
  const ys = Array.from({ length: n }, () => rng.int(0, k - 1));
  return { model, W, b, x: Array.from(xs.data), ys, ref: reference(W, b, k, d) };
}

const clip = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const f32 = (v: number) => Math.fround(v);

describe('FGSM and PGD', () => {
  const cases: Array<[string, AttackSpec, number]> = [
    ['targeted FGSM (the paper\'s)', attackConfig('fgsm-ll'), 8 / 255],
    ['untargeted FGSM', attackConfig('fgsm'), 3 / 255],
    ['targeted PGD, random start (the paper\'s)', attackConfig('pgd-ll', { steps: 7 }), 4 / 255],
    ['untargeted PGD, random start, best iterate', attackConfig('pgd', { steps: 5 }), 16 / 255],
    ['untargeted PGD from the clean image, best iterate', attackConfig('pgd', { steps: 6, cleanFirst: true }), 2 / 255],
  ];
  for (const [name, spec, eps] of cases) {
    it(`${name} equals a float64 re-implementation (odd sizes, batch 1 and 5)`, async () => {
      for (const [n, d, k] of [[1, 15, 3], [5, 21, 4]] as const) {
        const { model, x, ys, ref } = await setup(n, d, k, 11 + n);
        const targeted = spec.target === 'least-likely';
        const targets = Array.from({ length: n }, (_, i) => { const z = ref.logits(x.slice(i * d, (i + 1) * d)); return z.indexOf(Math.min(...z)); });
        const seed = 77;
        const restore = freeze(model);
        const out = E.tidy(() => {
          const xt = E.tensor(Float32Array.from(x), [n, 1, 3, d / 3]);
          const p = perturb(model, xt, E.tensor(Int32Array.from(ys), [n], { dtype: 'int32' }), targeted ? E.tensor(Int32Array.from(targets), [n], { dtype: 'int32' }) : null, spec, eps, new E.Generator(seed));
          return [p.xAdv, E.stack(p.trace)];
        });
        restore();
        const [adv, trace] = await Promise.all(out.map((t) => t.data()));
        E.dispose(out);
        const start = spec.randomStart && !spec.cleanFirst ? new E.Generator(seed).uniform(n * d, -eps, eps) : null;
        const alpha = spec.kind === 'fgsm' ? eps : eps * spec.stepFraction;
        const refTrace = new Array<number>(spec.steps + 1).fill(0);
        for (let i = 0; i < n; i++) {
          const x0 = x.slice(i * d, (i + 1) * d);
          const lo = x0.map((v) => clip(f32(v - eps), 0, 1)), hi = x0.map((v) => clip(f32(v + eps), 0, 1));
          let xa = x0.map((v, j) => (start ? clip(f32(v + start[i * d + j]!), lo[j]!, hi[j]!) : v));
          const label = targeted ? targets[i]! : ys[i]!, sign = targeted ? -1 : 1;
          // Best iterate: the last point that fooled the model, else the one of highest objective.
          let fooled: number[] | null = null, best = xa, bestObj = -Infinity;
          const track = (pt: number[], obj: number, pred: number) => {
            if (pred !== ys[i]) fooled = pt;
            if (obj > bestObj) { best = pt; bestObj = obj; }
          };
          for (let s = 0; s < spec.steps; s++) {
            const { obj, g, pred } = ref.objGrad(xa, label, sign);
            refTrace[s]! += obj;
            track(xa, obj, pred);
            xa = xa.map((v, j) => clip(v + alpha * Math.sign(g[j]!), lo[j]!, hi[j]!));
          }
          const last = ref.objGrad(xa, label, sign);
          refTrace[spec.steps]! += last.obj;
          track(xa, last.obj, last.pred);
          if (spec.bestIterate) xa = fooled ?? best;
          for (let j = 0; j < d; j++) expect(Math.abs(adv![i * d + j]! - xa[j]!), `${name} sample ${i} pixel ${j}`).toBeLessThan(2e-6);
          for (let j = 0; j < d; j++) expect(Math.abs(adv![i * d + j]! - x0[j]!)).toBeLessThanOrEqual(eps + 1e-6);
        }
        refTrace.forEach((v, s) => expect(trace![s]!, `${name} trace ${s}`).toBeCloseTo(v, 4));
        model.dispose();
      }
    });
  }
});

describe('APGD', () => {
  it('checks progress on AutoAttack\'s schedule', () => {
    expect(checkpoints(100)).toEqual([22, 41, 57, 70, 80, 87, 93, 99]);
    expect(checkpoints(10)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(checkpoints(1)).toEqual([1]);
  });

  for (const loss of ['ce', 'margin'] as const) {
    it(`APGD-${loss} equals a float64 re-implementation (momentum, step halving from the best point, best iterate, restarts)`, async () => {
      const n = 6, d = 12, k = 3, eps = 12 / 255, seed = 5;
      const spec = attackConfig(`apgd-${loss}`, { steps: 12, restarts: 2 });
      const { model, x, ys, ref } = await setup(n, d, k, 3);
      const restore = freeze(model);
      const out = E.tidy(() => {
        const p = perturb(model, E.tensor(Float32Array.from(x), [n, 1, 3, d / 3]), E.tensor(Int32Array.from(ys), [n], { dtype: 'int32' }), null, spec, eps, new E.Generator(seed));
        return [p.xAdv, p.obj];
      });
      restore();
      const [adv, obj] = await Promise.all(out.map((t) => t.data()));
      E.dispose(out);
      const gen = new E.Generator(seed);
      const starts = [gen.uniform(n * d, -eps, eps), gen.uniform(n * d, -eps, eps)];
      const checks = new Set(checkpoints(spec.steps));
      const f = (xa: number[], y: number) => (loss === 'ce' ? ref.objGrad(xa, y, 1) : ref.marginGrad(xa, y));
      for (let i = 0; i < n; i++) {
        const x0 = x.slice(i * d, (i + 1) * d);
        const lo = x0.map((v) => clip(f32(v - eps), 0, 1)), hi = x0.map((v) => clip(f32(v + eps), 0, 1));
        const P = (v: number[]) => v.map((u, j) => clip(u, lo[j]!, hi[j]!));
        const runs = starts.map((start) => {
          let xa = P(x0.map((v, j) => f32(v + start[i * d + j]!)));
          let { obj: lossNow, g, pred } = f(xa, ys[i]!);
          let xPrev = xa, xBest = xa, gBest = g, lossBest = lossNow, lossPrev = lossNow, lossAtCheck = lossNow;
          let fooled = pred !== ys[i], xFooled = xa, objFooled = lossNow, step = 2 * eps, inc = 0, reduced = true, since = 0;
          for (let s = 0; s < spec.steps; s++) {
            const a = s === 0 ? 1 : 0.75;
            const z = P(xa.map((v, j) => v + step * Math.sign(g[j]!)));
            const xn = P(xa.map((v, j) => v + a * (z[j]! - v) + (1 - a) * (v - xPrev[j]!)));
            xPrev = xa; xa = xn;
            ({ obj: lossNow, g, pred } = f(xa, ys[i]!));
            if (pred !== ys[i]) { fooled = true; xFooled = xa; objFooled = lossNow; }
            if (lossNow > lossPrev) inc++;
            lossPrev = lossNow;
            if (lossNow > lossBest) { xBest = xa; gBest = g; lossBest = lossNow; }
            since++;
            if (checks.has(s + 1)) {
              const halve: boolean = inc <= 0.75 * since || (!reduced && lossAtCheck >= lossBest);
              if (halve) { step /= 2; xa = xBest; g = gBest; }
              reduced = halve; lossAtCheck = lossBest; inc = 0; since = 0;
            }
          }
          return fooled ? { x: xFooled, obj: objFooled, fooled } : { x: xBest, obj: lossBest, fooled };
        });
        // Restarts: a misclassification beats a correct prediction, else the higher objective.
        const [r0, r1] = runs as [typeof runs[0], typeof runs[0]];
        const final = (r1.fooled && !r0.fooled) || (r1.fooled === r0.fooled && r1.obj > r0.obj) ? r1 : r0;
        for (let j = 0; j < d; j++) expect(Math.abs(adv![i * d + j]! - final.x[j]!), `sample ${i} pixel ${j}`).toBeLessThan(1e-5);
        expect(obj![i]!).toBeCloseTo(final.obj, 4);
      }
      model.dispose();
    });
  }

});

describe('attack mechanics', () => {
  it('restarts keep each sample\'s worst case: a misclassification, else the higher objective', async () => {
    const y = E.tensor([0, 1, 0, 1], [4], { dtype: 'int32' });
    const mk = (preds: number[], obj: number[], fill: number) => ({
      xAdv: E.full([4, 1, 1, 2], fill),
      logits: E.tensor(preds.flatMap((p) => (p === 0 ? [1, 0] : [0, 1])), [4, 2]),
      obj: E.tensor(obj, [4]),
    });
    const a = mk([0, 0, 1, 1], [0.5, 0.1, 0.2, 0.9], 1);
    const b = mk([1, 0, 0, 1], [0.1, 0.9, 0.9, 0.3], 2);
    const w = keepWorst(a, b, y);
    // sample 0: b fools, a does not -> b; 1: both fool -> higher obj (b); 2: only a fools -> a; 3: neither -> higher obj (a).
    expect(Array.from(await w.xAdv.data()).filter((_, i) => i % 2 === 0)).toEqual([2, 2, 1, 1]);
    expect(Array.from(await w.obj.data()).map((v) => +v.toFixed(3))).toEqual([0.1, 0.9, 0.2, 0.9]);
    E.dispose([a, b, w, y]);
  });

  it('never computes weight gradients, restores the model\'s mode, and holds a flat number of tensors', async () => {
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: 3, seed: 2 });
    model.train();
    const x = E.rand([2, 3, 12, 12], { generator: new E.Generator(1) });
    const y = E.tensor([0, 2], [2], { dtype: 'int32' });
    const run = (spec: AttackSpec) => {
      const restore = freeze(model);
      E.dispose(E.tidy(() => perturb(model, x, y, null, spec, 8 / 255, new E.Generator(3))));
      restore();
    };
    for (const spec of [attackConfig('pgd', { steps: 3, restarts: 2 }), attackConfig('apgd-dlr', { steps: 4, restarts: 2 })]) {
      run(spec);
      const live = E.memory().tensors;
      for (let i = 0; i < 3; i++) run(spec);
      expect(E.memory().tensors, `${spec.kind}: live tensors after 3 more attacks`).toBe(live);
    }
    expect(model.training).toBe(true);
    expect(model.parameters().every((p) => p.requiresGrad && p.grad === null)).toBe(true);
    E.dispose([x, y]); model.dispose();
  });

  it('run step by step with waits between steps (for a page), it gives the same result and reports progress', async () => {
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: 3, seed: 6 });
    const x = E.rand([2, 3, 12, 12], { generator: new E.Generator(1) });
    const y = E.tensor([1, 2], [2], { dtype: 'int32' });
    const restore = freeze(model);
    for (const spec of [attackConfig('pgd', { steps: 3, restarts: 2 }), attackConfig('apgd-ce', { steps: 4 })]) {
      const live = E.memory().tensors;
      const sync = perturb(model, x, y, null, spec, 6 / 255, new E.Generator(9));
      const seen: string[] = [];
      const asyncResult = await perturbAsync(model, x, y, null, spec, 6 / 255, new E.Generator(9), (done, total) => seen.push(`${done}/${total}`));
      expect(Array.from(await asyncResult.xAdv.data())).toEqual(Array.from(await sync.xAdv.data()));
      expect(seen).toEqual(Array.from({ length: spec.steps * spec.restarts }, (_, k) => `${k + 1}/${spec.steps * spec.restarts}`));
      E.dispose([sync, asyncResult]);
      expect(E.memory().tensors).toBe(live);
    }
    restore();
    E.dispose([x, y]); model.dispose();
  });

  it('a k-step PGD costs k forward + input-gradient passes and one final forward, no more', () => {
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, seed: 4 });
    const x = E.rand([2, 3, 12, 12], { generator: new E.Generator(1) });
    const y = E.tensor([0, 1], [2], { dtype: 'int32' });
    const restore = freeze(model);
    const count = (fn: () => unknown) => { const d0 = E.dispatchCount(); E.dispose(E.tidy(fn as () => E.Tensor)); return E.dispatchCount() - d0; };
    const oneStep = count(() => inputGradient(model, x, y, null, 'ce'));
    const forward = count(() => E.noGrad(() => model.forward(x)));
    for (const steps of [5, 20]) {
      const pgd = count(() => perturb(model, x, y, null, attackConfig('pgd', { steps }), 4 / 255, new E.Generator(0)));
      // Per step: the gradient pass plus elementwise ops (sign, step, projection, and about 20 for the best-iterate record).
      expect(pgd, `pgd-${steps}: ${pgd} dispatches vs ${oneStep} per gradient pass`).toBeLessThanOrEqual(steps * (oneStep + 28) + forward + 40);
    }
    restore();
    E.dispose([x, y]); model.dispose();
  });
});

describe('epsilon and attack names', () => {
  it('parses 1/255 units by default, fractions on request, and k/255 always', () => {
    expect(parseEps('0,1,2.5')).toEqual([0, 1 / 255, 2.5 / 255]);
    expect(parseEps('0.01,4/255', 'fraction')).toEqual([0.01, 4 / 255]);
    expect(formatEps(4 / 255)).toBe('4/255 (0.01569)');
    expect(() => parseEps('1,x')).toThrow(/--eps: 'x' is not a non-negative number/);
    expect(() => parseEps('2', 'fraction')).toThrow(/more than the whole \[0, 1\] pixel range \(values are fractions; did you mean 1\/255 units\?\)/);
    expect(() => parseEps('')).toThrow(/no epsilon given/);
  });

  it('names attacks by preset and overrides, and refuses bad ones', () => {
    expect(attackConfig('pgd-ll').name).toBe('pgd-ll-20');
    expect(attackConfig('pgd', { steps: 10, restarts: 3 })).toMatchObject({ name: 'pgd-10-x3', stepFraction: 0.25, restarts: 3 });
    expect(attackConfig('fgsm-ll', { steps: 9 })).toMatchObject({ name: 'fgsm-ll', steps: 1 });
    expect(attackConfig('pgd-margin', { steps: 20, restarts: 3, cleanFirst: true }).name).toBe('pgd-margin-20-x3-clean');
    expect(attackConfig('apgd-ce').steps).toBe(100);
    expect(() => attackConfig('cw')).toThrow(/unknown attack 'cw' \(have fgsm-ll, pgd-ll, fgsm, fgsm-margin, pgd, pgd-margin, apgd-ce, apgd-margin, apgd-dlr, apgd-t, square\)/);
    expect(() => attackConfig('pgd', { steps: 0 })).toThrow(/steps must be a positive integer, got 0/);
  });
});
