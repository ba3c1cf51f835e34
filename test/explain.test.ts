// Interpretation: the blur and normalisation against direct float64 formulas, saliency on a
// linear model (whose input gradient is its weight row), SmoothGrad, exact t-SNE on
// well-separated clusters (separation kept, seeded and reproducible, perplexity calibrated),
// k-NN regions and the margin proxy against brute force, and the figures' sizes.
import { beforeAll, describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import * as E from '../engine/node.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { defaultSigma, gaussianBlur, normalise, saliency } from '../experiments/explain/saliency.js';
import { jointProbabilities, tsne } from '../experiments/explain/tsne.js';
import { knnPredict, marginProxy, regionsFigure } from '../experiments/explain/regions.js';
import { saliencyFigure } from '../experiments/explain/figures.js';
import { gpu, Rng } from './helpers/setup.js';

beforeAll(gpu);

class LinearImageClassifier extends Module {
  readonly fc: Linear;
  constructor(d: number, k: number) { super(); this.fc = this.registerModule('fc', new Linear(d, k, { generator: new E.Generator(4) })); }
  forward(x: E.Tensor): E.Tensor { return this.fc.forward(E.flatten(x, 1)); }
}

describe('saliency', () => {
  it('blurs like scipy.ndimage.gaussian_filter (reflect edges, 4 sigma) on odd sizes', () => {
    const rng = new Rng(1);
    for (const [h, w, sigma] of [[7, 5, 1.3], [9, 12, 2], [5, 5, 5]] as const) {
      const m = Float32Array.from(rng.arr([h * w], 0, 1).data);
      const r = Math.ceil(4 * sigma);
      const reflect = (i: number, n: number) => { for (;;) { if (i < 0) i = -i - 1; else if (i >= n) i = 2 * n - i - 1; else return i; } };
      const g = (t: number) => Math.exp(-(t * t) / (2 * sigma * sigma));
      let norm = 0;
      for (let t = -r; t <= r; t++) norm += g(t);
      const got = gaussianBlur(m, h, w, sigma);
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          let want = 0;
          for (let a = -r; a <= r; a++) for (let b = -r; b <= r; b++) want += (g(a) * g(b) / (norm * norm)) * m[reflect(y + a, h) * w + reflect(x + b, w)]!;
          expect(got[y * w + x]!).toBeCloseTo(want, 5);
        }
      }
    }
    expect(Array.from(normalise(Float32Array.from([2, 4, 3])))).toEqual([0, 1, 0.5]);
    expect(Array.from(normalise(Float32Array.from([3, 3])))).toEqual([0, 0]);
    expect(defaultSigma(224)).toBe(5);
  });

  it('is |d logit_c / d x| of the predicted class, max over channels, normalised (a linear model: its weight row)', async () => {
    const c = 3, h = 4, w = 5, k = 3, n = 2;
    const model = new LinearImageClassifier(c * h * w, k);
    const x = E.rand([n, c, h, w], { generator: new E.Generator(8) });
    const logits = await E.noGrad(() => model.forward(x)).data();
    const W = await model.fc.weight.data();
    const out = await saliency(model, x, { sigma: 0 });
    for (let i = 0; i < n; i++) {
      const row = Array.from(logits.subarray(i * k, (i + 1) * k));
      const pred = row.indexOf(Math.max(...row));
      expect(out.pred[i]).toBe(pred);
      const sm = row.map((v) => Math.exp(v - Math.max(...row)));
      expect(out.confidence[i]!).toBeCloseTo(sm[pred]! / sm.reduce((a, b) => a + b, 0), 5);
      const raw = Array.from({ length: h * w }, (_, p) => Math.max(...Array.from({ length: c }, (_, ch) => Math.abs(W[pred * c * h * w + ch * h * w + p]!))));
      const lo = Math.min(...raw), hi = Math.max(...raw);
      raw.forEach((v, p) => expect(out.maps[i * h * w + p]!).toBeCloseTo((v - lo) / (hi - lo), 5));
    }
    // SmoothGrad of a linear model is the vanilla gradient (the gradient does not depend on x).
    const smooth = await saliency(model, x, { sigma: 0, smoothSamples: 3 });
    smooth.maps.forEach((v, p) => expect(v).toBeCloseTo(out.maps[p]!, 5));
    expect(model.parameters().every((p) => p.requiresGrad && p.grad === null)).toBe(true);
    E.dispose(x); model.dispose();
  });

  it('draws a grid of the stated size', async () => {
    const plane = new Float32Array(16 * 16).fill(0.5);
    const row = { clean: plane, adversarial: plane, cleanMap: plane, adversarialMap: plane, label: 'A', cleanPred: 'A', cleanConfidence: 0.9, adversarialPred: 'B', adversarialConfidence: 0.6 };
    const fig = await saliencyFigure([row, row], { channels: 1, size: 16, title: 't' });
    const png = PNG.sync.read(Buffer.from(fig.png));
    expect([png.width, png.height]).toEqual([fig.width, fig.height]);
  });
});

describe('t-SNE', () => {
  const clusters = (perCluster: number, dims: number, seed: number) => {
    const rng = new Rng(seed);
    const centres = [0, 1, 2].map(() => Array.from({ length: dims }, () => rng.uniform(-10, 10)));
    const x: number[] = [], label: number[] = [];
    centres.forEach((c, k) => { for (let i = 0; i < perCluster; i++) { x.push(...c.map((v) => v + rng.uniform(-0.5, 0.5))); label.push(k); } });
    return { x: Float32Array.from(x), label };
  };

  it('calibrates each point\'s conditional distribution to the perplexity, and P is a symmetric distribution', () => {
    const rng = new Rng(3);
    const n = 12, pts = rng.arr([n, 3], -2, 2).data;
    const d2 = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) d2[i * n + j] = [0, 1, 2].reduce((s, k) => s + (pts[i * 3 + k]! - pts[j * 3 + k]!) ** 2, 0);
    const p = jointProbabilities(d2, n, 5);
    let total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) { total += p[i * n + j]!; expect(p[i * n + j]!).toBeCloseTo(p[j * n + i]!, 12); }
    expect(total).toBeCloseTo(1, 6);
  });

  it('keeps well-separated clusters separated, and the same seed gives the same embedding', async () => {
    const { x, label } = clusters(15, 8, 5);
    const n = label.length;
    const run = async (seed: number) => { const t = E.tensor(x, [n, 8]); const r = await tsne(t, { perplexity: 10, iterations: 300, exaggerationIterations: 100, seed }); t.dispose(); return r; };
    const before = E.memory().tensors;
    const a = await run(1), b = await run(1), c = await run(2);
    expect(E.memory().tensors).toBe(before);
    expect(Array.from(b.y)).toEqual(Array.from(a.y));
    expect(Array.from(c.y)).not.toEqual(Array.from(a.y));
    expect(a.kl).toBeGreaterThan(0);
    expect(a.kl).toBeLessThan(2);
    for (let i = 0; i < n; i++) {
      // Each point's 5 nearest neighbours in the plane are from its own cluster.
      const d = Array.from({ length: n }, (_, j) => [(a.y[2 * i]! - a.y[2 * j]!) ** 2 + (a.y[2 * i + 1]! - a.y[2 * j + 1]!) ** 2, j] as const).filter(([, j]) => j !== i).sort((p, q) => p[0] - q[0]);
      for (const [, j] of d.slice(0, 5)) expect(label[j], `point ${i}`).toBe(label[i]);
    }
    const two = E.zeros([2, 3]), few = E.zeros([10, 3]);
    await expect(tsne(two)).rejects.toThrow(/needs at least 3 points, got 2/);
    await expect(tsne(few)).rejects.toThrow(/perplexity must be in \(0, 10\) for 10 points \(the protocol's 30 needs more than 30 points\), got 30/);
    E.dispose([two, few]);
  });
});

describe('decision regions and margins', () => {
  it('k-NN votes by majority with nearer neighbours breaking ties, like brute force', () => {
    const rng = new Rng(7);
    const n = 40, pts = Float32Array.from(rng.arr([n * 2], -1, 1).data), labels = Array.from({ length: n }, () => rng.int(0, 2));
    for (let q = 0; q < 30; q++) {
      const qx = rng.uniform(-1, 1), qy = rng.uniform(-1, 1);
      for (const k of [1, 5, 11]) {
        const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((pts[2 * a]! - qx) ** 2 + (pts[2 * a + 1]! - qy) ** 2) - ((pts[2 * b]! - qx) ** 2 + (pts[2 * b + 1]! - qy) ** 2)).slice(0, k);
        const count = [0, 1, 2].map((c) => order.filter((i) => labels[i] === c).length);
        const top = Math.max(...count);
        const want = labels[order.find((i) => count[labels[i]!] === top)!];
        expect(knnPredict(pts, labels, k, qx, qy)).toBe(want);
      }
    }
  });

  it('measures the clean points\' mean distance to the nearest other-class point', () => {
    // 1-D features: clean 0 (class 0) and 10 (class 1); adversarial 3 (class 1) and 9 (class 0).
    const f = Float32Array.from([0, 10, 3, 9]);
    const m = marginProxy(f, 1, [0, 1, 1, 0], [true, true, false, false]);
    expect(m.margin).toBeCloseTo((3 + 1) / 2, 6);
    expect(m.relative).toBeCloseTo(2 / 10, 6);
  });

  it('draws regions of the stated size', async () => {
    const png = PNG.sync.read(Buffer.from(await regionsFigure([{ x: 0, y: 0, pred: 0, adversarial: false }, { x: 1, y: 1, pred: 1, adversarial: true }, { x: 0, y: 1, pred: 1, adversarial: false }], ['a', 'b'], { title: 't', size: 200, grid: 20 })));
    expect([png.width, png.height]).toEqual([200, 270]);
  });
});
