// The evaluation driver: dropping fooled images at the checkpoints changes no image's outcome,
// restarts and cascaded attacks (Square) run only on the images still correct, zero-gradient
// shares are reported per step, the large-eps margin attack breaks a trained-looking model, and
// a long evaluation holds a flat number of tensors.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { createModel } from '../nn/models.js';
import { generateDataset } from '../experiments/data/generated.js';
import { freeze } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackBatch } from '../experiments/attacks/driver.js';
import { evaluateRobustness, NOT_ATTACKED } from '../experiments/attacks/evaluate.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

describe('evaluation driver', () => {
  it('drops images once fooled without changing any outcome (APGD and PGD, best iterate)', async () => {
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: 3, seed: 5 });
    const restore = freeze(model);
    const n = 7;
    const x = E.rand([n, 3, 12, 12], { generator: new E.Generator(2) });
    const y = E.tensor([0, 1, 2, 0, 1, 2, 1], [n], { dtype: 'int32' });
    for (const spec of [attackConfig('apgd-ce', { steps: 12 }), attackConfig('pgd-margin', { steps: 9 })]) {
      const whole = perturb(model, x, y, null, spec, 3 / 255, new E.Generator(4));
      const [predT] = [E.argmax(whole.logits, -1)];
      const pred = Array.from(await predT.data());
      const adv = await whole.xAdv.data();
      const labels = Array.from(await y.data());
      const r = await attackBatch(model, x, y, null, spec, 3 / 255, new E.Generator(4), { keepImages: true });
      const per = 3 * 12 * 12;
      for (let i = 0; i < n; i++) {
        expect(r.pred[i] !== labels[i], `${spec.name} image ${i}: fooled`).toBe(pred[i] !== labels[i]);
        // An image still correct at the end took every step in both runs: the same point.
        if (pred[i] === labels[i]) for (let j = 0; j < per; j += 17) expect(r.xAdv![i * per + j]).toBeCloseTo(adv[i * per + j]!, 6);
        expect(r.linf[i]).toBeLessThanOrEqual(3 / 255 + 1e-6);
      }
      // Per step: how many images were still attacked, never more than the batch, never rising.
      expect(r.active).toHaveLength(spec.steps);
      expect(r.active.every((a, s) => a <= n && (s === 0 || a <= r.active[s - 1]!))).toBe(true);
      expect(r.zero.every((z, s) => z >= 0 && z <= r.active[s]!)).toBe(true);
      E.dispose([whole, predT!]);
    }
    restore();
    E.dispose([x, y]); model.dispose();
  });

  it('runs restarts and cascaded attacks only on images still correct, and holds a flat number of tensors', async () => {
    const ds = generateDataset('chest', { size: 12, count: 24, seed: 3 });
    const model = createModel('resnet8', { imageSize: 12, smallInput: true, classes: ds.classes.length, seed: 1 });
    const indices = [...Array(ds.y.length).keys()].slice(0, 10);
    const attacks = [attackConfig('fgsm'), attackConfig('pgd', { steps: 4, restarts: 2 }), attackConfig('square', { steps: 12 })];
    const run = () => evaluateRobustness(model, ds, indices, { attacks, eps: [0, 2 / 255, 32 / 255], channels: 3, batchSize: 4, seed: 1, keepImagesOf: 'pgd-4-x2' });
    const first = await run();
    const live = E.memory().tensors;
    const again = await run();
    expect(E.memory().tensors).toBe(live);
    const timeless = (r: typeof first.result) => ({ ...r, records: r.records.map(({ seconds: _, ...rest }) => rest) });
    expect(timeless(again.result)).toEqual(timeless(first.result)); // seeded: the same every time
    const { result, images } = first;
    expect(result.cleanMargin).toHaveLength(10);
    expect(result.cleanMargin.map((m) => m > 0)).toEqual(result.cleanPred.map((p, i) => p === result.labels[i]));
    for (const eps of [2 / 255, 32 / 255]) {
      const at = (a: string) => result.records.find((r) => r.attack === a && r.eps === eps)!;
      // Square attacked exactly the images that were correct clean and under FGSM and PGD.
      const robust = result.labels.map((y, i) => result.cleanPred[i] === y && at('fgsm').advPred[i] === y && at('pgd-4-x2').advPred[i] === y);
      const square = at('square-12');
      expect(square.attacked).toBe(robust.filter(Boolean).length);
      square.advPred.forEach((p, i) => expect(p === NOT_ATTACKED, `image ${i}`).toBe(!robust[i]));
      expect(images.get(eps)).toHaveLength(10 * 3 * 12 * 12);
    }
    model.dispose();
  });
});
