// APGD (Croce and Hein, ICML 2020), the step-size-free attack at the core of AutoAttack.
// Per sample: a step size that starts at 2 eps and halves at checkpoints where the loss
// oscillated or stopped improving (restarting from the best point so far), and a momentum of
// 0.75 between iterates. The checkpoint schedule depends only on the step count, so every
// decision is a per-sample mask on the GPU and nothing is read back.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { type Box, type Classifier, inputGradient, misclassified, project, randomStart } from './gradient.js';
import { evaluateAt, type Stepper } from './pgd.js';
import type { AttackSpec } from './spec.js';

const MOMENTUM = 0.75;
const OSCILLATION = 0.75;

/** The steps after which APGD checks its progress (AutoAttack's: first at 22%, then shrinking intervals). */
export function checkpoints(steps: number): number[] {
  const out: number[] = [];
  let k = Math.max(Math.floor(0.22 * steps), 1);
  const decrease = Math.max(Math.floor(0.03 * steps), 1), shortest = Math.max(Math.floor(0.06 * steps), 1);
  for (let at = k; at <= steps; at += k) {
    out.push(at);
    k = Math.max(k - decrease, shortest);
  }
  return out;
}

export function apgdStepper(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, box: Box, gen: E.Generator): Stepper {
  const n = x.shape[0]!;
  const perSample = (t: Tensor) => E.reshape(t, [n, 1, 1, 1]);
  const checks = new Set(checkpoints(spec.steps));
  // The state outlives the per-step scopes (keep), and `swap` frees what an update replaces.
  const s: Record<string, Tensor> = {};
  const swap = (updates: Record<string, Tensor>): void => {
    const old = Object.keys(updates).map((k) => s[k]).filter((t): t is Tensor => t !== undefined);
    for (const t of Object.values(updates)) E.keep(t);
    Object.assign(s, updates);
    for (const t of old) if (!Object.values(s).includes(t)) t.dispose();
  };
  const start = E.tidy(() => {
    const xa = eps > 0 ? randomStart(x, eps, box, gen) : E.detach(x);
    const { logits, obj, grad } = inputGradient(model, xa, y, target, spec.loss);
    swap({
      xa, xPrev: xa, grad, xBest: xa, gradBest: grad, lossBest: obj, lossPrev: obj, lossAtCheck: obj,
      xFooled: xa, fooled: misclassified(logits, y), step: E.full([n], 2 * eps), increases: E.zeros([n]), reducedAtCheck: E.zeros([n]),
    });
    return E.sum(obj);
  });
  let i = 0, sinceCheck = 0;
  const step = (): Tensor => {
    const sum = E.tidy(() => {
      const a = i === 0 ? 1 : MOMENTUM;
      const z = project(E.add(s.xa!, E.mul(E.sign(s.grad!), perSample(s.step!))), box);
      const xNew = project(E.add(E.add(s.xa!, E.mul(E.sub(z, s.xa!), a)), E.mul(E.sub(s.xa!, s.xPrev!), 1 - a)), box);
      const { logits, obj, grad } = inputGradient(model, xNew, y, target, spec.loss);
      const wrong = misclassified(logits, y);
      const better = E.gt(obj, s.lossBest!);
      swap({
        xPrev: s.xa!, xa: xNew, grad,
        xFooled: E.where(perSample(wrong), xNew, s.xFooled!), fooled: E.maximum(s.fooled!, wrong),
        increases: E.add(s.increases!, E.gt(obj, s.lossPrev!)), lossPrev: obj,
        xBest: E.where(perSample(better), xNew, s.xBest!), gradBest: E.where(perSample(better), grad, s.gradBest!),
        lossBest: E.where(better, obj, s.lossBest!),
      });
      return E.sum(obj);
    });
    i++; sinceCheck++;
    if (checks.has(i)) {
      E.tidy(() => {
        // Halve the step where the loss rose in at most 75% of the steps since the last check, or
        // where the best loss did not move and the step was not just halved; restart those from the best point.
        const oscillated = E.le(s.increases!, OSCILLATION * sinceCheck);
        const stalled = E.mul(E.affine(s.reducedAtCheck!, -1, 1), E.ge(s.lossAtCheck!, s.lossBest!));
        const halve = E.maximum(oscillated, stalled);
        swap({
          step: E.where(halve, E.mul(s.step!, 0.5), s.step!), xa: E.where(perSample(halve), s.xBest!, s.xa!),
          grad: E.where(perSample(halve), s.gradBest!, s.grad!), reducedAtCheck: halve, lossAtCheck: s.lossBest!, increases: E.zeros([n]),
        });
      });
      sinceCheck = 0;
    }
    return sum;
  };
  const finish = () => {
    // A sample that was ever misclassified keeps that point; the others their highest-loss point.
    const xAdv = E.tidy(() => E.where(perSample(s.fooled!), s.xFooled!, s.xBest!));
    for (const t of new Set(Object.values(s))) t.dispose();
    return evaluateAt(model, xAdv, y, target, spec);
  };
  return { start, step, finish };
}
