// The Square attack (L-infinity, score-based) against a float64 re-implementation that replays
// the same seeded generator on linear and two-layer models, its square-size schedule, the
// eps-ball, its stopping rule and budget, models it must and cannot break, and flat memory.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { Module } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { freeze } from '../experiments/attacks/gradient.js';
import { squareAttack, squareFraction, squareSide, type SquareResult } from '../experiments/attacks/square.js';
import { gpu, Rng } from './helpers/setup.js';

beforeAll(gpu);

/** Logits = fc2(relu(fc1(x))), or fc1(x) alone when there is no hidden layer. */
class Mlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear | null;
  constructor(d: number, hidden: number, k: number, seed: number) {
    super();
    const generator = new E.Generator(seed);
    this.fc1 = this.registerModule('fc1', new Linear(d, hidden || k, { generator }));
    this.fc2 = hidden ? this.registerModule('fc2', new Linear(hidden, k, { generator })) : null;
  }
  forward(x: E.Tensor): E.Tensor {
    const h = this.fc1.forward(E.flatten(x, 1));
    return this.fc2 ? this.fc2.forward(E.relu(h)) : h;
  }
}

/** The same model in float64: per-image logits from the stored float32 weights. */
async function float64Net(model: Mlp): Promise<(x: ArrayLike<number>) => number[]> {
  const layer = async (l: Linear) => {
    const [W, b] = await Promise.all([l.weight.data(), l.bias.data()]);
    const [out, inp] = l.weight.shape as [number, number];
    return (x: ArrayLike<number>) => Array.from({ length: out }, (_, o) => {
      let s = b[o]!;
      for (let j = 0; j < inp; j++) s += W[o * inp + j]! * x[j]!;
      return s;
    });
  };
  const f1 = await layer(model.fc1), f2 = model.fc2 ? await layer(model.fc2) : null;
  return (x) => (f2 ? f2(f1(x).map((v) => Math.max(v, 0))) : f1(x));
}

async function makeModel(d: number, hidden: number, k: number, seed: number) {
  const model = new Mlp(d, hidden, k, seed);
  const rng = new Rng(seed + 100);
  E.noGrad(() => {
    for (const l of [model.fc1, model.fc2]) if (l) l.bias.assign(E.tensor(Float32Array.from(rng.arr([l.outFeatures], -0.3, 0.3).data), [l.outFeatures]));
  });
  return { model, net: await float64Net(model) };
}

type Shape4 = [number, number, number, number];
const margin = (z: number[], y: number) => z[y]! - Math.max(...z.filter((_, c) => c !== y));
const argmax = (z: ArrayLike<number>) => Array.from(z).indexOf(Math.max(...Array.from(z)));

/**
 * The attack in float64, written after the authors' attack.py, drawing from the generator in
 * the documented order. Returns each image's final point, margin and query count, the batch
 * size of every query round, and the smallest gap any decision hinged on (so the test can
 * tell that float32 logits could not have decided otherwise).
 */
function replay(net: (x: ArrayLike<number>) => number[], x: Float32Array, ys: number[], [n, c, h, w]: Shape4, eps: number, budget: number, pInit: number, seed: number) {
  const gen = new E.Generator(seed);
  const sgn = () => (gen.random() < 0.5 ? -1 : 1);
  const chw = c * h * w;
  const idx = (ch: number, r: number, col: number) => (ch * h + r) * w + col;
  const img = (i: number) => Array.from(x.subarray(i * chw, (i + 1) * chw));
  const corner = (v: number, s: number) => Math.fround(Math.min(1, Math.max(0, v + s * eps)));
  const xb = Array.from({ length: n }, (_, i) => {
    const x0 = img(i), out = [...x0];
    for (let ch = 0; ch < c; ch++) for (let col = 0; col < w; col++) {
      const s = sgn();
      for (let r = 0; r < h; r++) out[idx(ch, r, col)] = corner(x0[idx(ch, r, col)]!, s);
    }
    return out;
  });
  const m = xb.map((xi, i) => margin(net(xi), ys[i]!));
  const queries = new Array<number>(n).fill(1), batches = [n];
  let accepted = 0;
  let closest = Math.min(...m.map(Math.abs));
  for (let it = 0; it < budget - 1; it++) {
    const active = m.flatMap((v, i) => (v >= 0 ? [i] : []));
    if (!active.length) break;
    batches.push(active.length);
    const t = Math.floor((it / budget) * 10000);
    let p = pInit;
    if (t > 8000) p /= 512; else if (t > 6000) p /= 256; else if (t > 4000) p /= 128; else if (t > 2000) p /= 64;
    else if (t > 1000) p /= 32; else if (t > 500) p /= 16; else if (t > 200) p /= 8; else if (t > 50) p /= 4; else if (t > 10) p /= 2;
    const raw = Math.sqrt(p * h * w);
    const rounded = Math.abs(raw - Math.floor(raw) - 0.5) < 1e-12 ? 2 * Math.round(raw / 2) : Math.round(raw);
    const s = Math.min(Math.max(rounded, 1), Math.min(h, w) - 1);
    for (const i of active) {
      const x0 = img(i), cand = [...xb[i]!];
      const top = gen.int(h - s + 1), left = gen.int(w - s + 1);
      const window: number[] = [];
      for (let ch = 0; ch < c; ch++) for (let r = top; r < top + s; r++) for (let col = left; col < left + s; col++) window.push(idx(ch, r, col));
      const canMove = window.some((j) => corner(x0[j]!, 1) !== corner(x0[j]!, -1));
      let changed = false;
      do {
        const signs = Array.from({ length: c }, sgn);
        for (const j of window) cand[j] = corner(x0[j]!, signs[Math.floor(j / (h * w))]!);
        changed = window.some((j) => cand[j] !== xb[i]![j]);
      } while (!changed && canMove);
      const mn = margin(net(cand), ys[i]!);
      queries[i]!++;
      // Exact ties (a change seen only by dead ReLUs) are exact in float32 too.
      if (mn !== m[i]) closest = Math.min(closest, Math.abs(mn - m[i]!), Math.abs(mn));
      if (mn < m[i]!) { m[i] = mn; xb[i] = cand; accepted++; }
    }
  }
  return { xb, m, queries, batches, closest, accepted };
}

/** Images in [0, 1] with some pixels near the edges (so clipping to [0, 1] matters), labelled by the clean prediction. */
function data(net: (x: ArrayLike<number>) => number[], [n, c, h, w]: Shape4, seed: number) {
  const rng = new Rng(seed);
  const x = Float32Array.from(rng.arr([n * c * h * w], -0.1, 1.1).data, (v) => Math.min(1, Math.max(0, v)));
  const d = c * h * w;
  const ys = Array.from({ length: n }, (_, i) => argmax(net(x.subarray(i * d, (i + 1) * d))));
  return { x, ys };
}

/** A model that records how many images each forward pass sees. */
class Counting extends Module {
  readonly batches: number[] = [];
  constructor(readonly inner: Mlp) { super(); this.registerModule('inner', inner); }
  forward(x: E.Tensor): E.Tensor { this.batches.push(x.shape[0]!); return this.inner.forward(x); }
}

/** Runs the attack with frozen weights, counting the images each forward pass sees. */
async function attack(model: Mlp, x: Float32Array, ys: number[], shape: Shape4, eps: number, budget: number, seed: number, pInit?: number) {
  const counting = new Counting(model), progress: number[] = [];
  const restore = freeze(counting);
  const xt = E.tensor(x, shape), yt = E.tensor(Int32Array.from(ys), [shape[0]], { dtype: 'int32' });
  const r: SquareResult = await squareAttack(counting, xt, yt, eps, { queries: budget, pInit, gen: new E.Generator(seed), onQuery: (done) => progress.push(done) });
  restore();
  const [adv, logits, obj] = await Promise.all([r.xAdv.data(), r.logits.data(), r.obj.data()]);
  E.dispose([r.xAdv, r.logits, r.obj, xt, yt]);
  return { adv, logits, obj, queries: r.queries, batches: counting.batches, progress };
}

describe('Square attack', () => {
  it('sizes its squares on the reference schedule (hand-computed)', () => {
    // 28 x 28, 1000 queries: round(sqrt(p * 784)) with p = 0.8 halving after rounds 1, 5, 20, 50, 100, 200, 400, 600, 800.
    const at28 = [[0, 25], [1, 25], [2, 18], [5, 18], [6, 13], [20, 13], [21, 9], [50, 9], [51, 6], [100, 6], [101, 4], [200, 4], [201, 3], [400, 3], [401, 2], [600, 2], [601, 2], [800, 2], [801, 1], [999, 1]];
    expect(at28.map(([i]) => squareSide(i!, 1000, 0.8, 28, 28))).toEqual(at28.map(([, s]) => s));
    expect([0, 2, 6, 21, 51, 101, 201, 401, 601, 801].map((i) => squareFraction(i, 1000))).toEqual([0.8, 0.4, 0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625, 0.003125, 0.0015625]);
    expect(squareSide(0, 1000, 0.8, 64, 64)).toBe(57); // sqrt(3276.8) = 57.2
    expect(squareSide(801, 1000, 0.8, 64, 64)).toBe(3); // sqrt(6.4) = 2.53
    expect(squareFraction(1, 100)).toBe(0.2); // rescaled to 10,000: round 1 of 100 is 100
    expect(squareSide(0, 1000, 0.8, 4, 4)).toBe(3); // round(3.58) = 4, at most h - 1
    expect(squareSide(0, 1000, 0.8, 5, 7)).toBe(4); // round(5.29) = 5, at most min(h, w) - 1
    expect(squareSide(999, 1000, 0.8, 5, 5)).toBe(1); // round(0.2) = 0, at least 1
    expect([squareSide(0, 10, 0.25, 5, 5), squareSide(0, 10, 0.25, 7, 7)]).toEqual([2, 4]); // halves to even, as Python: 2.5 -> 2, 3.5 -> 4
  });

  const cases: Array<{ name: string; shape: Shape4; hidden: number; k: number; eps: number; budget: number; seed: number; pInit: number; early: number }> = [
    { name: 'linear, batch 1, 2 classes, 1 x 5 x 7', shape: [1, 1, 5, 7], hidden: 0, k: 2, eps: 6 / 255, budget: 90, seed: 7, pInit: 0.8, early: 0 },
    { name: 'linear, batch 5, 4 classes, 3 x 7 x 5', shape: [5, 3, 7, 5], hidden: 0, k: 4, eps: 4 / 255, budget: 90, seed: 3, pInit: 0.8, early: 0 },
    { name: 'two-layer, batch 5, 4 classes, 3 x 5 x 5', shape: [5, 3, 5, 5], hidden: 7, k: 4, eps: 8 / 255, budget: 90, seed: 9, pInit: 0.8, early: 3 },
    { name: 'two-layer, batch 1, 2 classes, 2 x 9 x 9', shape: [1, 2, 9, 9], hidden: 5, k: 2, eps: 3 / 255, budget: 90, seed: 10, pInit: 0.3, early: 0 },
  ];
  // `early`: how many images the seeded run fools before its budget (so the stopping rule is replayed too).
  for (const cs of cases) {
    it(`replays a float64 re-implementation step for step: ${cs.name}`, async () => {
      const [n, c, h, w] = cs.shape;
      const d = c * h * w;
      const { model, net } = await makeModel(d, cs.hidden, cs.k, cs.seed);
      const { x, ys } = data(net, cs.shape, cs.seed + 50);
      const got = await attack(model, x, ys, cs.shape, cs.eps, cs.budget, cs.seed, cs.pInit);
      const ref = replay(net, x, ys, cs.shape, cs.eps, cs.budget, cs.pInit, cs.seed);
      // No accept/reject decision was so close that float32 logits could have gone the other way.
      expect(ref.closest, 'closest decision').toBeGreaterThan(1e-5);
      expect(ref.accepted, 'squares accepted').toBeGreaterThan(2);
      expect(ref.queries.filter((q) => q < cs.budget).length, 'images fooled early').toBe(cs.early);
      expect(got.queries).toEqual(ref.queries);
      expect(got.batches).toEqual(ref.batches);
      expect(got.progress).toEqual(ref.batches.map((_, r) => r + 1));
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < d; j++) {
          const v = got.adv[i * d + j]!, x0 = x[i * d + j]!;
          expect(v, `image ${i} pixel ${j}`).toBe(ref.xb[i]![j]!);
          expect(Math.abs(v - x0)).toBeLessThanOrEqual(cs.eps + 1e-7);
          expect(v >= 0 && v <= 1).toBe(true);
        }
        expect(got.obj[i]!).toBeCloseTo(-ref.m[i]!, 5);
        // The logits returned are those at xAdv.
        const z = net(ref.xb[i]!);
        z.forEach((v, cl) => expect(got.logits[i * cs.k + cl]!).toBeCloseTo(v, 5));
        // An image is queried until it is misclassified or the budget is spent, never after.
        const fooled = got.obj[i]! > 0;
        expect(argmax(got.logits.subarray(i * cs.k, (i + 1) * cs.k)) !== ys[i]).toBe(fooled);
        if (!fooled) expect(got.queries[i]).toBe(cs.budget);
        expect(got.queries[i]).toBeLessThanOrEqual(cs.budget);
      }
      expect(got.batches.reduce((a, b) => a + b, 0)).toBe(got.queries.reduce((a, b) => a + b, 0));
      model.dispose();
    });
  }

  /** A 2-class linear model on 3 x 5 x 7 images near mid-grey (so no corner is clipped), label 0, with its float64 margins. */
  async function twoClass(margin: (vx: number[], r: number) => number) {
    const shape: Shape4 = [5, 3, 5, 7], d = 105, eps = 0.1;
    const model = new Mlp(d, 0, 2, 4);
    const W = await model.fc1.weight.data();
    const v = Array.from({ length: d }, (_, j) => W[j]! - W[d + j]!);
    const rng = new Rng(8);
    const x = Float32Array.from(rng.arr([5 * d], 0.4, 0.6).data);
    const vx = Array.from({ length: 5 }, (_, i) => v.reduce((s, vj, j) => s + vj * x[i * d + j]!, 0));
    // The best L-inf perturbation, -eps sign(v), lowers every margin by exactly eps ||v||_1.
    const reach = eps * v.reduce((s, vj) => s + Math.abs(vj), 0);
    const b = Math.fround(margin(vx, reach));
    E.noGrad(() => model.fc1.bias.assign(E.tensor([b, 0], [2])));
    return { model, x, shape, eps, reach, margins: vx.map((u) => u + b) };
  }

  it('breaks a linear model whose margins the best perturbation in the ball overturns', async () => {
    const { model, x, shape, eps, reach, margins } = await twoClass((vx, r) => 0.5 * r - vx.reduce((a, u) => a + u, 0) / vx.length);
    for (const m of margins) expect(m > 0.1 * reach && m < 0.9 * reach, `margin ${m} vs reach ${reach}`).toBe(true);
    const got = await attack(model, x, [0, 0, 0, 0, 0], shape, eps, 300, 1);
    for (let i = 0; i < 5; i++) {
      expect(got.obj[i]!, `image ${i}`).toBeGreaterThan(0);
      expect(got.logits[2 * i + 1]!).toBeGreaterThan(got.logits[2 * i]!);
      expect(got.queries[i]).toBeLessThan(300);
    }
    model.dispose();
  });

  it('cannot break one whose margins exceed eps ||w_0 - w_1||_1, and spends the whole budget trying', async () => {
    const { model, x, shape, eps, reach, margins } = await twoClass((vx, r) => 1.1 * r - Math.min(...vx));
    for (const m of margins) expect(m).toBeGreaterThan(1.05 * reach);
    const got = await attack(model, x, [0, 0, 0, 0, 0], shape, eps, 300, 1);
    for (let i = 0; i < 5; i++) {
      expect(got.obj[i]!, `image ${i}`).toBeLessThan(0);
      // Yet the search gets close to the best perturbation: most of the reachable margin is taken.
      expect(margins[i]! + got.obj[i]!, `image ${i}: margin taken`).toBeGreaterThan(0.8 * reach);
      expect(margins[i]! + got.obj[i]!).toBeLessThanOrEqual(reach + 1e-4);
    }
    expect(got.queries).toEqual([300, 300, 300, 300, 300]);
    expect(got.batches).toEqual(new Array(300).fill(5));
    model.dispose();
  });

  it('at eps 0 returns the images unchanged', async () => {
    const { model, net } = await makeModel(75, 7, 4, 9);
    const { x, ys } = data(net, [5, 3, 5, 5], 59);
    const got = await attack(model, x, ys, [5, 3, 5, 5], 0, 12, 1);
    expect(Array.from(got.adv)).toEqual(Array.from(x));
    expect(got.queries).toEqual([12, 12, 12, 12, 12]);
    model.dispose();
  });

  it('leaves only its result alive, in the caller\'s scope', async () => {
    const { model, net } = await makeModel(75, 7, 4, 9);
    const { x, ys } = data(net, [5, 3, 5, 5], 59);
    const xt = E.tensor(x, [5, 3, 5, 5]), yt = E.tensor(Int32Array.from(ys), [5], { dtype: 'int32' });
    const restore = freeze(model);
    const run = () => squareAttack(model, xt, yt, 8 / 255, { queries: 40, gen: new E.Generator(2) });
    const first = await run();
    E.dispose([first.xAdv, first.logits, first.obj]);
    const live = E.memory().tensors;
    for (let i = 0; i < 2; i++) {
      const r = await run();
      expect(E.memory().tensors).toBe(live + 3);
      E.dispose([r.xAdv, r.logits, r.obj]);
      expect(E.memory().tensors).toBe(live);
    }
    E.startScope();
    await run();
    E.endScope();
    expect(E.memory().tensors, 'a scope around the attack frees its result').toBe(live);
    restore();
    E.dispose([xt, yt]); model.dispose();
  });

  it('refuses bad arguments with clear messages', async () => {
    const { model } = await makeModel(12, 0, 2, 1);
    const x = E.zeros([1, 3, 2, 2]), y = E.tensor([0], [1], { dtype: 'int32' }), gen = new E.Generator(0);
    await expect(squareAttack(model, x, y, 0.1, { queries: 0, gen })).rejects.toThrow(/queries must be a positive integer, got 0/);
    await expect(squareAttack(model, x, y, 0.1, { queries: 5, pInit: 1.5, gen })).rejects.toThrow(/pInit must be in \(0, 1\], got 1.5/);
    await expect(squareAttack(model, x, y, -1, { queries: 5, gen })).rejects.toThrow(/eps must be non-negative, got -1/);
    await expect(squareAttack(model, x, E.tensor([0, 1], [2], { dtype: 'int32' }), 0.1, { queries: 5, gen })).rejects.toThrow(/2 labels for 1 images/);
    const flat = E.reshape(x, [1, 12]), thin = E.zeros([1, 12, 1, 1]);
    await expect(squareAttack(model, flat, y, 0.1, { queries: 5, gen })).rejects.toThrow(/images must be float32 \[n, c, h, w\], got float32 \[1, 12\]/);
    await expect(squareAttack(model, thin, y, 0.1, { queries: 5, gen })).rejects.toThrow(/at least 2 x 2 pixels, got 1 x 1/);
    E.dispose([x, y, flat, thin]); model.dispose();
  });
});
