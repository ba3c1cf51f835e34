// The evaluation's own sanity checks (Carlini et al., "On Evaluating Adversarial Robustness",
// 2019), run with every evaluation. A failed check is reported, never hidden: it means the
// numbers beside it are not to be trusted as they stand (gradient masking, a weak attack, a bug).
import { evaluateRobustness, type AttackRecord, type EvaluateOptions, type RobustnessResult } from './evaluate.js';
import type { ImageDataset } from '../data/dataset.js';
import type { Classifier } from './gradient.js';
import { ATTACK_PRESETS, attackConfig, eps255, type AttackConfig } from './spec.js';

export interface SanityCheck { check: string; passed: boolean; detail: string }

/** Accuracies within two binomial standard errors (and at least one image) are "equal". */
export function noise(acc: number, n: number): number {
  return Math.max(2 * Math.sqrt(Math.max(acc * (1 - acc), 0.25 / n) / n), 1 / n);
}

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
const baseName = (name: string) => Object.keys(ATTACK_PRESETS).sort((a, b) => b.length - a.length).find((k) => name === k || name.startsWith(`${k}-`)) ?? name;

/**
 * @param r the evaluation
 * @param large the untargeted PGD record at a large eps (64/255), where any undefended model should be near 0%
 * @param nearZero the accuracy under which "near 0%" holds
 */
export function sanityChecks(r: RobustnessResult, large: AttackRecord | null, nearZero = 0.05): SanityCheck[] {
  const n = r.indices.length;
  const out: SanityCheck[] = [];
  const byAttack = new Map<string, AttackRecord[]>();
  for (const rec of r.records) byAttack.set(rec.attack, [...(byAttack.get(rec.attack) ?? []), rec].sort((a, b) => a.eps - b.eps));
  // 1. An iterative attack is at least as strong as the one-step attack of the same goal.
  for (const [name, recs] of byAttack) {
    const base = ATTACK_PRESETS[baseName(name)];
    if (!base || base.kind === 'fgsm') continue;
    const fgsmName = base.target === 'least-likely' ? 'fgsm-ll' : 'fgsm';
    const fgsm = byAttack.get(fgsmName);
    if (!fgsm) continue;
    const worse = recs.filter((p) => p.eps > 0).flatMap((p) => {
      const f = fgsm.find((q) => Math.abs(q.eps - p.eps) < 1e-12);
      return f && p.acc > f.acc + noise(f.acc, n) ? [`eps ${eps255(p.eps)}/255: ${pct(p.acc)} > ${pct(f.acc)}`] : [];
    });
    out.push({ check: `${name} accuracy <= ${fgsmName}`, passed: worse.length === 0, detail: worse.length ? worse.join('; ') : `at every eps (within ${n}-image noise)` });
  }
  // 2. Accuracy does not rise with eps beyond noise.
  for (const [name, recs] of byAttack) {
    const rises: string[] = [];
    recs.forEach((rec, k) => {
      const lowest = Math.min(...recs.slice(0, k).map((p) => p.acc));
      if (k > 0 && rec.acc > lowest + noise(lowest, n)) rises.push(`${pct(rec.acc)} at ${eps255(rec.eps)}/255 after ${pct(lowest)}`);
    });
    const ll = ATTACK_PRESETS[baseName(name)]?.target === 'least-likely';
    const why = ll ? ' (a least-likely target is the true label of an image the model gets wrong, so this attack can correct mistakes: a known flaw of the paper\'s attack, not of the evaluation)' : '';
    out.push({ check: `${name} accuracy falls with eps`, passed: rises.length === 0, detail: rises.length ? rises.join('; ') + why : 'monotone within noise' });
  }
  // 3. A large eps breaks any model that is not defended (and most that are).
  if (large) {
    out.push({
      check: `${large.attack} at ${eps255(large.eps)}/255 reaches ~0%`, passed: large.acc <= nearZero,
      detail: `${pct(large.acc)} accuracy (threshold ${pct(nearZero)})${large.acc > nearZero ? '; an attack that cannot break the model at this size suggests masked gradients' : ''}`,
    });
  }
  // 4. An iterative attack's objective increases over its steps.
  const falling = [...r.records, ...(large ? [large] : [])].filter((rec) => rec.eps > 0 && ATTACK_PRESETS[baseName(rec.attack)]?.kind !== 'fgsm' && rec.trace.length >= 2 && rec.trace[rec.trace.length - 1]! < rec.trace[0]! - 1e-6)
    .map((rec) => `${rec.attack} at ${eps255(rec.eps)}/255: ${rec.trace[0]!.toFixed(4)} -> ${rec.trace[rec.trace.length - 1]!.toFixed(4)}`);
  out.push({ check: 'attack loss increases over the steps', passed: falling.length === 0, detail: falling.length ? falling.join('; ') : 'for every iterative attack and eps' });
  return out;
}

/** The large-eps check's attack: the study's untargeted PGD if it has one, else PGD with its longest step count. */
export const sanityAttack = (attacks: readonly AttackConfig[]): AttackConfig =>
  attacks.find((a) => a.kind === 'pgd' && a.target === 'none' && a.loss === 'ce') ?? attackConfig('pgd', { steps: Math.max(...attacks.map((a) => (a.kind === 'fgsm' ? 1 : a.steps))) });

/** An evaluation with its sanity checks: the attacks over the grid, then the large-eps attack, then the checks. */
export async function evaluateWithChecks(model: Classifier, ds: ImageDataset, indices: readonly number[], o: EvaluateOptions & { sanityEps: number }):
  Promise<{ result: RobustnessResult; large: AttackRecord; checks: SanityCheck[] }> {
  const result = await evaluateRobustness(model, ds, indices, o);
  const large = (await evaluateRobustness(model, ds, indices, { ...o, attacks: [sanityAttack(o.attacks)], eps: [o.sanityEps], onProgress: undefined })).records[0]!;
  return { result, large, checks: sanityChecks(result, large) };
}
