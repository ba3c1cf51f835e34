// The evaluation's sanity suite on constructed results: every check passes on a consistent
// evaluation and each one fails, naming what it saw, on a result built to break it.
import { describe, expect, it } from 'vitest';
import { sanityChecks } from '../experiments/attacks/sanity.js';
import type { AttackRecord, RobustnessResult } from '../experiments/attacks/evaluate.js';
import { attackConfig } from '../experiments/attacks/spec.js';

describe('sanity checks', () => {
  const n = 100;
  const labels = Array.from({ length: n }, () => 0);
  /** A record where the first round(acc * n) images are still classified correctly. */
  const rec = (attack: string, eps: number, acc: number, extra: Partial<AttackRecord> = {}): AttackRecord => ({
    attack, eps, acc, advPred: labels.map((_, i) => (i < Math.round(acc * n) ? 0 : 1)), loss: [], linf: [], trace: [], zeroGrad: [], attacked: n, seconds: 0, ...extra,
  });
  const result = (records: AttackRecord[]): RobustnessResult => ({ indices: labels.map((_, i) => i), labels, cleanPred: labels.map(() => 0), cleanMargin: [], cleanAcc: 1, records });
  const attacks = ['fgsm-ll', 'pgd-ll', 'fgsm', 'fgsm-margin', 'pgd', 'apgd-ce', 'apgd-margin', 'square'].map((a) => attackConfig(a, a === 'pgd' ? { steps: 100 } : {}));
  const names = attacks.map((a) => a.name);
  // Square runs after the others on the images they left correct: the rest are NOT_ATTACKED (-1).
  const cascaded = (acc: number): Partial<AttackRecord> => ({ advPred: labels.map((_, i) => (i < Math.round(acc * n) ? 0 : -1)), attacked: Math.round(acc * n) });
  const grid = (acc: Record<string, [number, number]>, extra: Record<string, Partial<AttackRecord>> = {}) =>
    names.flatMap((name) => [1, 4].map((e, k) => rec(name, e / 255, acc[name]![k]!, { ...(name.startsWith('square') ? cascaded(acc[name]![k]!) : {}), ...extra[`${name}@${e}`] })));
  const ok = { 'fgsm-ll': [0.8, 0.5], 'pgd-ll-20': [0.7, 0.3], fgsm: [0.6, 0.2], 'fgsm-margin': [0.6, 0.2], 'pgd-100': [0.4, 0.1], 'apgd-ce-100': [0.3, 0.05], 'apgd-margin-100': [0.3, 0.05], 'square-1000': [0.3, 0.05] } as Record<string, [number, number]>;

  it('pass on a consistent evaluation', () => {
    const checks = sanityChecks(result(grid(ok)), attacks, rec('pgd-margin-20-x3-clean', 64 / 255, 0));
    expect(checks.filter((c) => !c.passed)).toEqual([]);
    expect(checks.map((c) => c.check)).toEqual(expect.arrayContaining(['pgd-ll-20 accuracy falls with eps', 'worst case accuracy falls with eps']));
  });

  it('flag iterative above single-step, APGD above PGD, accuracy rising with eps, an unbroken model at 64/255, Square beating the gradients, zero gradients and a falling loss', () => {
    const bad = { ...ok, 'pgd-ll-20': [0.9, 0.3], 'apgd-ce-100': [0.45, 0.6] } as Record<string, [number, number]>;
    const squareBroke = rec('square-1000', 1 / 255, 0.3, { advPred: labels.map((_, i) => (i < 25 ? 0 : i < 30 ? 1 : -1)), attacked: 30 });
    const records = grid(bad, { 'pgd-100@1': { zeroGrad: [0, 0.05, 0] }, 'pgd-ll-20@4': { trace: [1, 0.5] } }).map((r) => (r.attack === 'square-1000' && r.eps < 2 / 255 ? squareBroke : r));
    const checks = sanityChecks(result(records), attacks, rec('pgd-margin-20-x3-clean', 64 / 255, 0.02));
    const failed = checks.filter((c) => !c.passed).map((c) => c.check);
    expect(failed).toEqual([
      'pgd-margin-20-x3-clean at 64/255 reaches <= 1.0%',
      'iterative vs single-step: pgd-ll-20 accuracy <= fgsm-ll',
      'iterative vs single-step: apgd-ce-100 accuracy <= fgsm',
      'APGD vs PGD: apgd-ce-100 accuracy <= pgd-100',
      'apgd-ce-100 accuracy falls with eps',
      'gradient-free square-1000 finds nothing the white-box attacks missed',
      'images with a zero input gradient <= 1.0% at every step',
      'attack loss increases over the steps',
    ]);
    expect(checks.find((c) => c.check.startsWith('iterative vs single-step: pgd-ll'))!.detail).toMatch(/1\/255: 90.0% > 80.0%/);
    expect(checks.find((c) => c.check.startsWith('gradient-free'))!.detail).toMatch(/5 of 30 images .*gradient masking is likely/);
  });
});
