// The training step that the Node trainer and the page share (experiments/train/step.ts): it is
// exactly a hand-written step (forward, cross-entropy, backward, Adam with L2 on the convolution
// kernels, on Madry's PGD images when adversarial), to the bit; its epoch loop is exactly those
// steps over the batches; and both callers run it rather than a loop of their own.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { gpu } from './helpers/setup.js';
import * as E from '../engine/node.js';
import { createModel } from '../nn/models.js';
import { Adam } from '../nn/optim.js';
import { generateDataset } from '../experiments/data/generated.js';
import { makeBatch } from '../experiments/data/augment.js';
import { freeze, type Classifier } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import { adamFor, trainEpoch, trainStep, type StepReport } from '../experiments/train/step.js';

beforeAll(gpu);

const SIZE = 8, LR = 1e-2, L2 = 1e-3;
const ds = generateDataset('chest', { size: SIZE, count: 20, seed: 2 });
const tiny = () => createModel('resnet8', { imageSize: SIZE, inChannels: 1, classes: 2, smallInput: true, seed: 1, bnMomentum: 0.1 });
const batch = (idx: number[], augment?: { shift: number; flip: boolean; generator: E.Generator }) => {
  const b = makeBatch(ds, idx, { channels: 1, augment });
  return { x: E.tensor(b.x, [idx.length, 1, SIZE, SIZE]), y: E.tensor(b.y, [idx.length]), labels: b.y };
};

/** The reference: Adam with L2 on the rank-4 kernels, built by hand, and a step written out. */
function referenceAdam(model: Classifier): Adam {
  const named = model.namedParameters();
  const convs = named.filter(([n, t]) => n.endsWith('.weight') && t.rank === 4).map(([, t]) => t);
  return new Adam([{ params: convs, l2: L2 }, { params: named.map(([, t]) => t).filter((t) => !convs.includes(t)) }], { lr: LR });
}
async function referenceStep(model: Classifier, opt: Adam, x: E.Tensor, y: E.Tensor, labels: Int32Array): Promise<{ loss: number; correct: number }> {
  model.train();
  const [loss, logits] = E.tidy(() => {
    const z = model.forward(x);
    const l = E.crossEntropy(z, y);
    l.backward(); opt.step(); opt.zeroGrad();
    return [E.detach(l), E.detach(z)];
  });
  const z = await logits!.data(), value = await loss!.item();
  E.dispose([loss, logits]);
  let correct = 0;
  labels.forEach((label, i) => { if ((z[2 * i + 1]! > z[2 * i]! ? 1 : 0) === label) correct++; });
  return { loss: value, correct };
}

/** The weights, batch-norm buffers and Adam moments whose bytes differ between two models. */
async function differing(a: Classifier, optA: Adam, b: Classifier, optB: Adam): Promise<string[]> {
  const raw = async (t: E.Tensor) => { const d = await t.data(); return Buffer.from(d.buffer, d.byteOffset, d.byteLength); };
  const sa = { ...a.stateDict(), ...optA.stateTensors() }, sb = { ...b.stateDict(), ...optB.stateTensors() };
  expect(Object.keys(sa)).toEqual(Object.keys(sb));
  const out: string[] = [];
  for (const k of Object.keys(sa)) if (!(await raw(sa[k]!)).equals(await raw(sb[k]!))) out.push(k);
  return out;
}

describe('the shared training step', () => {
  it('is forward, cross-entropy, backward and Adam with L2 on the conv kernels, to the bit', async () => {
    const a = tiny(), b = tiny();
    const optA = adamFor(a, { lr: LR, l2: L2 }), optB = referenceAdam(b);
    const sums = E.zeros([2]);
    let lossSum = 0, correct = 0;
    for (const idx of [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]]) {
      const { x, y, labels } = batch(idx);
      const loss = trainStep(a, optA, x, y, { sums });
      const ref = await referenceStep(b, optB, x, y, labels);
      expect(await loss.item()).toBe(ref.loss);
      lossSum += ref.loss * idx.length; correct += ref.correct;
      E.dispose([loss, x, y]);
    }
    expect(await differing(a, optA, b, optB)).toEqual([]);
    const [s0, s1] = Array.from(await sums.data());
    expect(Math.abs(s0! - lossSum)).toBeLessThan(1e-5 * lossSum);
    expect(s1).toBe(correct);
    E.dispose([sums]); optA.dispose(); optB.dispose(); a.dispose(); b.dispose();
  });

  it('trains on the PGD images of the batch when adversarial (Madry), to the bit', async () => {
    const a = tiny(), b = tiny();
    const optA = adamFor(a, { lr: LR, l2: L2 }), optB = referenceAdam(b);
    const attack = { ...attackConfig('pgd', { steps: 2, stepFraction: 0.25 }), bestIterate: false }, eps = 8 / 255;
    const { x, y, labels } = batch([0, 1, 2, 3, 4, 5]);
    const loss = trainStep(a, optA, x, y, { adversarial: { attack, eps, generator: new E.Generator(9) } });
    const restore = freeze(b);
    const xAdv = perturb(b, x, y, null, attack, eps, new E.Generator(9)).xAdv;
    restore();
    expect(b.training).toBe(true);
    const ref = await referenceStep(b, optB, xAdv, y, labels);
    expect(await loss.item()).toBe(ref.loss);
    expect(await differing(a, optA, b, optB)).toEqual([]);
    // The attack changed what was learnt: the clean step ends elsewhere.
    const c = tiny(), optC = referenceAdam(c);
    await referenceStep(c, optC, x, y, labels);
    expect((await differing(c, optC, b, optB)).length).toBeGreaterThan(0);
    expect(a.parameters().every((p) => p.requiresGrad)).toBe(true);
    E.dispose([loss, x, y, xAdv]);
    for (const o of [optA, optB, optC]) o.dispose();
    for (const m of [a, b, c]) m.dispose();
  });

  it('runs an epoch as those steps over its batches, augmented, one step in flight', async () => {
    const a = tiny(), b = tiny();
    const optA = adamFor(a, { lr: LR, l2: L2 }), optB = referenceAdam(b);
    const order = new E.Generator(4).shuffle(Array.from({ length: 20 }, (_, i) => i));
    const reports: Array<Omit<StepReport, 'loss' | 'sums'> & { loss: number }> = [];
    const fit = await trainEpoch(a, optA, {
      ds, order, batchSize: 8, channels: 1, augment: { shift: 0.1, flip: true, generator: new E.Generator(5) },
      onStep: async (r) => { reports.push({ step: r.step, steps: r.steps, seen: r.seen, loss: await r.loss.item() }); },
    });
    const gen = new E.Generator(5);
    let lossSum = 0, correct = 0;
    for (let s = 0; s < 3; s++) {
      const { x, y, labels } = batch(order.slice(8 * s, 8 * s + 8), { shift: 0.1, flip: true, generator: gen });
      const ref = await referenceStep(b, optB, x, y, labels);
      expect(reports[s]).toEqual({ step: s + 1, steps: 3, seen: Math.min(8 * s + 8, 20), loss: ref.loss });
      lossSum += ref.loss * y.shape[0]!; correct += ref.correct;
      E.dispose([x, y]);
    }
    expect(reports.length).toBe(3);
    expect(await differing(a, optA, b, optB)).toEqual([]);
    expect(Math.abs(fit.loss - lossSum / 20)).toBeLessThan(1e-5 * fit.loss);
    expect(fit.acc).toBe(correct / 20);
    optA.dispose(); optB.dispose(); a.dispose(); b.dispose();
  });

  it('is what the Node trainer and the page run, and the page bundles it without Node', async () => {
    const root = join(__dirname, '..');
    const r = await build({ entryPoints: ['experiments/web/main.ts'], absWorkingDir: root, bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('experiments/train/step.ts');
    expect(inputs.filter((f) => f.startsWith('node:') || f.includes('node_modules/webgpu') || /engine\/(device\/)?node\.ts$/.test(f))).toEqual([]);
    for (const [file, from] of [['experiments/web/main.ts', '../train/step.js'], ['experiments/train/trainer.ts', './step.js']] as const) {
      const src = readFileSync(join(root, file), 'utf8');
      expect(src).toMatch(new RegExp(`import \\{[^}]*\\btrainEpoch\\b[^}]*\\} from '${from.replace(/\./g, '\\.')}'`));
      // No step of its own: the backward pass and the optimiser's update are only in step.ts.
      expect(src, file).not.toMatch(/\.backward\(|\.step\(\)|new Adam\(/);
    }
  });
});
