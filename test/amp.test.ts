// Mixed-precision training (issue 14): a few steps of a small ResNet-8 in mixed precision track
// the float32 run (same seed, data and optimiser), the master weights and optimiser state stay
// float32, and the dynamic loss scaler skips a step with an injected Inf gradient, halves its
// scale, and grows it after its interval of good steps.
import { describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { createModel } from '../nn/models.js';
import { LossScaler, parsePrecision } from '../nn/amp.js';
import { adamFor, trainStep, trainStepMixed } from '../experiments/train/step.js';
import { parseStudyConfig } from '../experiments/study/config.js';
import { trainConfig } from '../experiments/study/runner.js';
import { gpu, Rng } from './helpers/setup.js';

await gpu();
const hasF16 = E.getDevice().features.has('shader-f16');

function batch(seed: number): { x: E.Tensor; y: E.Tensor } {
  const r = new Rng(seed);
  const n = 6, size = 12;
  const x = r.arr([n, 3, size, size], 0, 1);
  const y = Int32Array.from({ length: n }, (_, i) => (i + seed) % 2);
  return { x: E.tensor(Float32Array.from(x.data), x.shape), y: E.tensor(y, [n]) };
}

async function run(mixed: boolean, steps: number): Promise<{ losses: number[]; weights: Float32Array; initial: Float32Array; scaler: LossScaler }> {
  const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: 2, seed: 3, bnMomentum: 0.1 });
  const opt = adamFor(model, { lr: 1e-3, l2: 1e-4 });
  const scaler = new LossScaler();
  const losses: number[] = [];
  const initial = await model.parameters()[0]!.data() as Float32Array;
  model.train();
  for (let s = 0; s < steps; s++) {
    const { x, y } = batch(s);
    const loss = mixed ? await trainStepMixed(model, opt, x, y, scaler) : trainStep(model, opt, x, y);
    losses.push(await loss.item());
    E.dispose([loss, x, y]);
  }
  for (const p of model.parameters()) expect(p.dtype).toBe('float32');
  for (const t of Object.values(opt.stateTensors())) expect(t.dtype).toBe('float32');
  const weights = await model.parameters()[0]!.data() as Float32Array;
  opt.dispose(); model.dispose();
  return { losses, weights, initial, scaler };
}

describe.skipIf(!hasF16)('mixed precision training', () => {
  it('a few ResNet-8 steps in mixed precision track the float32 run', async () => {
    const f32 = await run(false, 4);
    const mixed = await run(true, 4);
    expect(mixed.scaler.skippedSteps).toBe(0);
    // float16 activations: the losses agree to about float16's 3 significant digits.
    for (let s = 0; s < 4; s++) expect(Math.abs(mixed.losses[s]! - f32.losses[s]!), `step ${s}: ${mixed.losses[s]} vs ${f32.losses[s]}`).toBeLessThan(1e-2 * Math.max(1, f32.losses[s]!));
    // The stem's weights after 4 Adam steps (lr 1e-3, so moves of up to 4e-3): Adam's normalised
    // steps turn float16 noise in near-zero gradients into whole steps, so single weights may
    // differ by a few steps, but the runs moved the weights alike on average.
    let diff = 0, moved = 0;
    for (let i = 0; i < f32.weights.length; i++) {
      diff += Math.abs(mixed.weights[i]! - f32.weights[i]!);
      moved += Math.abs(f32.weights[i]! - f32.initial[i]!);
    }
    expect([...mixed.initial]).toEqual([...f32.initial]);
    expect(diff / moved, `mean |mixed - float32| ${diff / f32.weights.length} against mean move ${moved / f32.weights.length}`).toBeLessThan(0.25);
  });

  it('the models without global pooling take float16 input: ResNet-8 (8x8 average pooling), CBR-LargeT (max pooling)', async () => {
    const r = new Rng(5);
    for (const [name, size] of [['resnet8', 32], ['cbr-larget', 6]] as const) {
      const model = createModel(name, { imageSize: size, smallInput: name === 'cbr-larget', classes: 2, seed: 1 });
      model.eval();
      const x = r.arr([2, 3, size, size], 0, 1);
      const t = E.tensor(Float32Array.from(x.data), x.shape);
      const [a, b] = E.noGrad(() => [model.forward(t), model.forward(E.cast(t, 'float16'))]);
      expect(b!.dtype).toBe('float32');
      const [va, vb] = [await a!.data(), await b!.data()];
      for (let i = 0; i < va.length; i++) expect(Math.abs(va[i]! - vb[i]!), `${name} logit ${i}: ${va[i]} vs ${vb[i]}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(va[i]!)));
      E.dispose([a, b, t]); model.dispose();
    }
  });

  it('the loss scaler skips a step with an Inf gradient, halves its scale, and grows it after good steps', async () => {
    const w = E.tensor([1, 2, 3], [3], { requiresGrad: true });
    const v = E.tensor([4, 5], [2], { requiresGrad: true });
    const scaler = new LossScaler({ initScale: 1024, growthInterval: 2 });
    w.grad = E.tensor([2048, Infinity, 0], [3]);
    v.grad = E.tensor([1024, 512], [2]);
    expect(await scaler.unscale([w, v])).toBe(false);
    expect(w.grad).toBe(null);
    expect(v.grad).toBe(null);
    expect(scaler.state()).toEqual({ scale: 512, goodSteps: 0, skippedSteps: 1 });
    w.grad = E.tensor([512, Number.NaN, 0], [3]);
    expect(await scaler.unscale([w, v])).toBe(false);
    expect(scaler.scale).toBe(256);
    for (let k = 0; k < 2; k++) {
      w.grad = E.tensor([256, -512, 0], [3]);
      expect(await scaler.unscale([w, v])).toBe(true);
      expect([...await w.grad!.data()]).toEqual([1, -2, 0]);
    }
    expect(scaler.state()).toEqual({ scale: 512, goodSteps: 0, skippedSteps: 2 });
    E.dispose([w, v]);
  });

  it('a step whose scaled gradients overflow float16 is skipped: weights and optimiser state untouched, scale halved', async () => {
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: 2, seed: 3 });
    const opt = adamFor(model, {});
    const scaler = new LossScaler({ initScale: 2 ** 40 }); // float16's largest finite value is 65504
    model.train();
    const before = await Promise.all(model.parameters().map((p) => p.data()));
    const { x, y } = batch(0);
    const loss = await trainStepMixed(model, opt, x, y, scaler);
    expect(Number.isFinite(await loss.item())).toBe(true);
    expect(scaler.state()).toEqual({ scale: 2 ** 39, goodSteps: 0, skippedSteps: 1 });
    expect(opt.step_).toBe(0);
    const after = await Promise.all(model.parameters().map((p) => p.data()));
    after.forEach((a, i) => expect([...a], `parameter ${i}`).toEqual([...before[i]!]));
    expect(model.parameters().every((p) => p.grad === null)).toBe(true);
    E.dispose([loss, x, y]); opt.dispose(); model.dispose();
  });

  it('validates precision names and scaler options', () => {
    expect(parsePrecision('mixed', 'x')).toBe('mixed');
    expect(parsePrecision(undefined, 'x')).toBe('float32');
    expect(() => parsePrecision('half', 'medgrad train: --precision')).toThrow(/medgrad train: --precision: precision must be float32 or mixed, got 'half'/);
    expect(() => new LossScaler({ backoffFactor: 2 })).toThrow(/LossScaler: bad options/);
  });
});

describe('precision in the study config', () => {
  it('is float32 unless set, mixed for the standard models only, and validated', () => {
    const base = { preset: 'quick' };
    expect(parseStudyConfig(base).train.precision).toBeUndefined();
    const c = parseStudyConfig({ ...base, train: { precision: 'mixed' } });
    expect(c.train.precision).toBe('mixed');
    expect(parseStudyConfig({ ...base, train: { precision: 'float32' } }).train.precision).toBeUndefined();
    expect(() => parseStudyConfig({ ...base, train: { precision: 'fp16' } })).toThrow(/'precision' must be 'float32' or 'mixed', got "fp16"/);
    const u = { model: 'resnet8', seed: 0, dataset: c.datasets[0]! } as unknown as Parameters<typeof trainConfig>[1];
    const ds = { classes: ['a', 'b'] } as unknown as Parameters<typeof trainConfig>[3];
    expect(trainConfig(c, u, 'standard', ds, '').precision).toBe('mixed');
    if (c.adversarial) expect(trainConfig(c, u, 'adversarial', ds, 'w').precision).toBeUndefined();
  });
});
