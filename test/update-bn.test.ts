// Batch-norm statistics recomputed for fixed weights: BatchNorm2d's cumulative average
// (momentum null, as PyTorch's) against float64 batch statistics, updateBn on a model (every
// layer's statistics, restored momentum and mode, inputs freed, an empty pass changing nothing),
// and the trainer and study options that use it.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { BatchNorm2d, Conv2d, Sequential } from '../nn/layers.js';
import { updateBn } from '../nn/update-bn.js';
import { Rng } from '../engine/reference/check.js';
import { parseStudyConfig } from '../experiments/study/config.js';
import { studyUnits, trainConfig } from '../experiments/study/runner.js';
import { gpu, toTensor } from './helpers/setup.js';

beforeAll(gpu);

/** Per-channel mean and unbiased variance of an NCHW array, in float64. */
function stats(a: { shape: number[]; data: Float64Array }): [number[], number[]] {
  const [N, C, H, W] = a.shape as [number, number, number, number];
  const n = N * H * W, mean: number[] = [], v: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let i = 0; i < N; i++) for (let p = 0; p < H * W; p++) s += a.data[(i * C + c) * H * W + p]!;
    const m = s / n;
    let q = 0;
    for (let i = 0; i < N; i++) for (let p = 0; p < H * W; p++) q += (a.data[(i * C + c) * H * W + p]! - m) ** 2;
    mean.push(m); v.push(q / (n - 1));
  }
  return [mean, v];
}

const closeTo = (got: ArrayLike<number>, want: readonly number[], what: string) => {
  want.forEach((w, i) => expect(Math.abs(got[i]! - w), `${what}[${i}]: ${got[i]} vs ${w}`).toBeLessThan(1e-4 + 1e-4 * Math.abs(w)));
};

describe('batch-norm statistics for fixed weights', () => {
  it('momentum null: running statistics are the plain average of the batches since the reset (PyTorch semantics)', async () => {
    const r = new Rng(5);
    const bn = new BatchNorm2d(3, { momentum: 0.01 });
    bn.momentum = null;
    bn.resetRunningStats();
    // Batches of different sizes and distributions, odd spatial sizes, batch 1 among them.
    const batches = [r.arr([4, 3, 5, 3], -2, 3), r.arr([1, 3, 5, 3], 0, 1), r.arr([3, 3, 5, 3], -5, -1)];
    for (const b of batches) E.tidy(() => { E.noGrad(() => bn.forward(toTensor(b))); });
    expect(bn.numBatchesTracked).toBe(3);
    const per = batches.map(stats);
    const avg = (k: 0 | 1) => [0, 1, 2].map((c) => per.reduce((s, p) => s + p[k][c]!, 0) / per.length);
    closeTo(await bn.runningMean.data(), avg(0), 'running mean');
    closeTo(await bn.runningVar.data(), avg(1), 'running var');
    // Inference mode neither counts nor updates.
    bn.eval();
    E.tidy(() => { bn.forward(toTensor(batches[0]!)); });
    expect(bn.numBatchesTracked).toBe(3);
    closeTo(await bn.runningMean.data(), avg(0), 'running mean after eval');
    bn.dispose();
  });

  it('updateBn sets every layer to the average over the batches, restores momentum and mode, frees its inputs', async () => {
    const gen = new E.Generator(3);
    const model = new Sequential(
      new Conv2d(2, 4, 3, { generator: gen, padding: 'same' }), new BatchNorm2d(4, { momentum: 0.01 }),
      new Conv2d(4, 3, 3, { generator: gen, padding: 'valid', stride: 2 }), new BatchNorm2d(3, { momentum: 0.3 }),
    );
    const [bn1, bn2] = [model.layers[1] as BatchNorm2d, model.layers[3] as BatchNorm2d];
    model.eval();
    const r = new Rng(11);
    const inputs = [r.arr([3, 2, 7, 9], 0, 1), r.arr([2, 2, 7, 9], -1, 2)];
    // The reference: each layer's batch statistics of each input, through the same weights.
    const want: Array<[number[], number[]]> = [[[], []], [[], []]];
    const per: Array<Array<[number[], number[]]>> = [[], []];
    for (const a of inputs) {
      const z1 = E.tidy(() => (model.layers[0] as Conv2d).forward(toTensor(a)));
      const h = E.tidy(() => E.batchNorm2d(z1, bn1.weight, bn1.bias, E.zeros([4]), E.ones([4]), { training: true }));
      const z2 = E.tidy(() => (model.layers[2] as Conv2d).forward(h));
      for (const [k, z] of [z1, z2].entries()) per[k]!.push(stats({ shape: [...z.shape], data: Float64Array.from(await z.data()) }));
      E.dispose([z1, h, z2]);
    }
    for (const k of [0, 1]) for (const j of [0, 1] as const) want[k]![j] = per[k]![0]![j].map((v, c) => (v + per[k]![1]![j][c]!) / 2);
    const before = E.memory().tensors;
    function* batches(): Generator<E.Tensor> { for (const a of inputs) yield toTensor(a); }
    expect(updateBn(model, batches())).toBe(2);
    expect(E.memory().tensors).toBe(before);
    closeTo(await bn1.runningMean.data(), want[0]![0], 'layer 1 mean');
    closeTo(await bn1.runningVar.data(), want[0]![1], 'layer 1 var');
    closeTo(await bn2.runningMean.data(), want[1]![0], 'layer 2 mean');
    closeTo(await bn2.runningVar.data(), want[1]![1], 'layer 2 var');
    expect([bn1.momentum, bn2.momentum, model.training]).toEqual([0.01, 0.3, false]);
    // No batches: the statistics stay as they are.
    const kept = await bn2.runningVar.data();
    expect(updateBn(model, [])).toBe(0);
    expect(Array.from(await bn2.runningVar.data())).toEqual(Array.from(kept));
    model.dispose();
  });
});

describe('bnRecalibration in a study config', () => {
  const base = {
    name: 't', models: ['resnet8'], seeds: [1], eps: [0, 2],
    datasets: [{ name: 'd', data: 'generated:chest', imageSize: 12, count: 40, perClass: 2, tableEps: 2, adversarial: { eps: 4, steps: 1, stepFraction: 1 } }],
  };

  it('reaches the standard models\' training, not Madry fine-tuning, and is absent when 0', () => {
    const c = parseStudyConfig({ ...base, train: { bnRecalibration: 256 } }, 'test.json');
    expect(c.train.bnRecalibration).toBe(256);
    const u = studyUnits(c)[0]!;
    const ds = { classes: ['a', 'b'] } as Parameters<typeof trainConfig>[3];
    expect(trainConfig(c, u, 'standard', ds, '').bnRecalibration).toBe(256);
    expect(trainConfig({ ...c, adversarial: { models: ['resnet8'], seeds: 1, epochs: 1, lr: 1e-3, patience: 1 } }, u, 'adversarial', ds, '').bnRecalibration).toBeUndefined();
    expect('bnRecalibration' in parseStudyConfig({ ...base, train: { bnRecalibration: 0 } }, 'test.json').train).toBe(false);
  });

  it('names the option and the file when the value is wrong', () => {
    expect(() => parseStudyConfig({ ...base, train: { bnRecalibration: -3 } }, 'my-study.json')).toThrow(/my-study\.json.*bnRecalibration.*non-negative integer/);
    expect(() => parseStudyConfig({ ...base, train: { bnRecalibration: 1.5 } }, 'my-study.json')).toThrow(/bnRecalibration/);
  });
});
