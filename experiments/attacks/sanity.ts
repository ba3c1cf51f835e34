// The evaluation's own sanity checks (Carlini et al., "On Evaluating Adversarial Robustness",
// 2019), run with every evaluation. A failed check is reported, never hidden: it means the
// numbers beside it are not to be trusted as they stand (gradient masking, a weak attack, a bug).
import { evaluateRobustness, type AttackRecord, type EvaluateOptions, type RobustnessResult, worstCaseCorrect } from './evaluate.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Classifier } from './gradient.js';
import { attackConfig, eps255, type AttackConfig } from './spec.js';

export interface SanityCheck { check: string; passed: boolean; detail: string }

/** Accuracies within two binomial standard errors (and at least one image) are "equal". */
export function noise(acc: number, n: number): number {
  return Math.max(2 * Math.sqrt(Math.max(acc * (1 - acc), 0.25 / n) / n), 1 / n);
}

/** The large-eps attack must bring every model to at most this accuracy. */
export const NEAR_ZERO = 0.01;
/** A share of images with an exactly zero input gradient above this, at any step, is flagged. */
export const ZERO_GRADIENT = 0.01;

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const at = (rec: AttackRecord) => `${eps255(rec.eps)}/255`;
const same = (a: number, b: number) => Math.abs(a - b) < 1e-12;

/** Runs each of `pairs` (stronger, weaker) at every eps: the stronger must not be less effective beyond noise. */
function dominance(name: string, pairs: Array<[AttackConfig, AttackConfig]>, recs: AttackRecord[], n: number): SanityCheck[] {
  return pairs.map(([strong, weak]) => {
    const worse = recs.filter((p) => p.attack === strong.name && p.eps > 0).flatMap((p) => {
      const q = recs.find((r) => r.attack === weak.name && same(r.eps, p.eps));
      return q && p.acc > q.acc + noise(q.acc, n) ? [`${at(p)}: ${pct(p.acc)} > ${pct(q.acc)}`] : [];
    });
    return { check: `${name}: ${strong.name} accuracy <= ${weak.name}`, passed: worse.length === 0, detail: worse.length ? worse.join('; ') : `at every eps (within ${n}-image noise)` };
  });
}

/**
 * The checks of one evaluation.
 * @param r the evaluation
 * @param attacks the attacks it ran, in order
 * @param large the large-eps (64/255) margin attack's record, where any undefended model should be at ~0%
 */
export function sanityChecks(r: RobustnessResult, attacks: readonly AttackConfig[], large: AttackRecord | null): SanityCheck[] {
  const n = r.indices.length;
  const out: SanityCheck[] = [];
  const alone = attacks.filter((a) => !a.cascade);
  const goal = (a: AttackConfig) => `${a.loss}/${a.target}`;
  // 1. A large eps breaks any model that is not defended (and most that are).
  if (large) {
    out.push({
      check: `${large.attack} at ${at(large)} reaches <= ${pct(NEAR_ZERO)}`, passed: large.acc <= NEAR_ZERO,
      detail: `${pct(large.acc)} accuracy${large.acc > NEAR_ZERO ? '; an attack that cannot break a model at this size means masked gradients or a broken attack' : ''}`,
    });
  }
  // 2. An iterative attack is at least as strong as the one-step attack of the same loss and goal.
  const fgsm = alone.filter((a) => a.kind === 'fgsm');
  out.push(...dominance('iterative vs single-step', alone.filter((a) => a.kind !== 'fgsm' && a.kind !== 'square').flatMap((a) => {
    const f = fgsm.find((b) => goal(b) === goal(a));
    return f ? [[a, f] as [AttackConfig, AttackConfig]] : [];
  }), r.records, n));
  // 3. APGD is at least as strong as PGD of the same loss, goal and budget.
  out.push(...dominance('APGD vs PGD', alone.filter((a) => a.kind === 'apgd').flatMap((a) => {
    const p = alone.find((b) => b.kind === 'pgd' && goal(b) === goal(a) && b.steps * b.restarts === a.steps * a.restarts);
    return p ? [[a, p] as [AttackConfig, AttackConfig]] : [];
  }), r.records, n));
  // 4. Accuracy does not rise with eps beyond noise, per attack and for the worst case.
  const epsList = [...new Set(r.records.map((x) => x.eps))].sort((a, b) => a - b);
  const worst = { attack: 'worst case', recs: epsList.map((eps) => ({ eps, acc: worstCaseCorrect(r, eps).filter(Boolean).length / Math.max(n, 1) })) };
  for (const { attack, recs } of [...alone.map((a) => ({ attack: a.name, recs: r.records.filter((x) => x.attack === a.name).sort((p, q) => p.eps - q.eps) })), worst]) {
    const rises: string[] = [];
    recs.forEach((rec, k) => {
      const lowest = Math.min(...recs.slice(0, k).map((p) => p.acc));
      if (k > 0 && rec.acc > lowest + noise(lowest, n)) rises.push(`${pct(rec.acc)} at ${eps255(rec.eps)}/255 after ${pct(lowest)}`);
    });
    const ll = attacks.find((a) => a.name === attack)?.target === 'least-likely';
    const why = ll ? ' (a least-likely target is the true label of an image the model gets wrong, so this attack can correct mistakes: a known flaw of the paper\'s attack, not of the evaluation)' : '';
    out.push({ check: `${attack} accuracy falls with eps`, passed: rises.length === 0, detail: rises.length ? rises.join('; ') + why : 'monotone within noise' });
  }
  // 5. A gradient-free attack run after the white-box ones should find (almost) nothing they missed.
  for (const sq of attacks.filter((a) => a.kind === 'square')) {
    const extra = r.records.filter((p) => p.attack === sq.name && p.eps > 0).flatMap((p) => {
      const broke = p.advPred.filter((v, i) => v >= 0 && v !== r.labels[i]).length;
      return broke > Math.max(1, NEAR_ZERO * n) ? [`${at(p)}: ${broke} of ${p.attacked} images the gradient attacks left correct`] : [];
    });
    out.push({ check: `gradient-free ${sq.name} finds nothing the white-box attacks missed`, passed: extra.length === 0, detail: extra.length ? `${extra.join('; ')}: gradient masking is likely` : 'at every eps (at most one image or 1%)' });
  }
  // 6. The share of images whose input gradient is exactly zero, per step.
  const zeros = [...r.records, ...(large ? [large] : [])].filter((rec) => rec.zeroGrad.length && Math.max(...rec.zeroGrad) > ZERO_GRADIENT)
    .map((rec) => `${rec.attack} at ${at(rec)}: up to ${pct(Math.max(...rec.zeroGrad))}`);
  out.push({ check: `images with a zero input gradient <= ${pct(ZERO_GRADIENT)} at every step`, passed: zeros.length === 0, detail: zeros.length ? zeros.join('; ') : 'for every gradient attack and eps' });
  // 7. An attack that runs every image every step raises its objective over the steps.
  const falling = r.records.filter((rec) => rec.eps > 0 && rec.trace.length >= 2 && rec.trace[rec.trace.length - 1]! < rec.trace[0]! - 1e-6)
    .map((rec) => `${rec.attack} at ${at(rec)}: ${rec.trace[0]!.toFixed(4)} -> ${rec.trace[rec.trace.length - 1]!.toFixed(4)}`);
  out.push({ check: 'attack loss increases over the steps', passed: falling.length === 0, detail: falling.length ? falling.join('; ') : 'for every iterative attack and eps' });
  return out;
}

/** The large-eps check's attack: PGD on the margin loss, from the clean image and then from two random points. */
export const sanityAttack = (): AttackConfig => attackConfig('pgd-margin', { steps: 20, restarts: 3, cleanFirst: true });

export interface CheckedEvaluation { result: RobustnessResult; large: AttackRecord; checks: SanityCheck[]; images: Map<number, Float32Array> }

/** An evaluation with its sanity checks: the attacks over the grid, then the large-eps attack, then the checks. */
export async function evaluateWithChecks(model: Classifier, ds: ImageDataset, indices: readonly number[], o: EvaluateOptions & { sanityEps: number }): Promise<CheckedEvaluation> {
  const { result, images } = await evaluateRobustness(model, ds, indices, o);
  const big = await evaluateRobustness(model, ds, indices, { ...o, attacks: [sanityAttack()], eps: [o.sanityEps], onProgress: undefined, keepImagesOf: undefined });
  const large = big.result.records[0]!;
  return { result, large, checks: sanityChecks(result, o.attacks, large), images };
}
