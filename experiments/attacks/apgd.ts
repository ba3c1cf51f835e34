// APGD (Croce and Hein, ICML 2020), the step-size-free attack at the core of AutoAttack, as
// their reference implementation runs it. Per sample: a step size that starts at 2 eps and
// halves at checkpoints where the loss oscillated or stopped improving (restarting from the
// best point so far), and a momentum of 0.75 between iterates. The checkpoint schedule depends
// only on the step count, so every decision is a per-sample mask on the GPU and nothing is read
// back. Every sample keeps its best point of any iterate (the last that fooled the model, else
// the highest objective).
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { inputGradient, project } from './gradient.js';
import { AttackState, bestOf, pick, track } from './state.js';
import { startPoint, type StepperFactory } from './pgd.js';

const MOMENTUM = 0.75;
const OSCILLATION = 0.75;

/** The steps after which APGD checks its progress (AutoAttack's: first at 22%, then shrinking intervals, at least 6%). */
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

export const apgdStepper: StepperFactory = (model, x, y, target, spec, eps, box, gen, restart) => {
  const checks = new Set(checkpoints(spec.steps));
  const s = new AttackState();
  // Views, so that select() and dispose() never touch the caller's tensors.
  s.update({ y: E.detach(y), target: target && E.detach(target), lo: E.detach(box.lo), hi: E.detach(box.hi) });
  const label = () => s.get('y');
  const goal = () => (s.has('target') ? s.get('target') : null);
  const start = E.keep(E.tidy(() => {
    const xa = startPoint(x, spec, eps, box, gen, restart);
    const { logits, obj, grad, zero } = inputGradient(model, xa, label(), goal(), spec.loss);
    track(s, xa, logits, obj, label());
    const n = x.shape[0]!;
    // The reference starts with "reduced at the last check" set, so the first check halves only on oscillation.
    s.update({ xa, xPrev: xa, grad, zero, gradBest: grad, lossPrev: obj, lossAtCheck: obj, step: E.full([n], 2 * eps), increases: E.zeros([n]), reducedAtCheck: E.ones([n]) });
    return E.sum(obj);
  }));
  let i = 0, sinceCheck = 0;
  const step = (): { obj: Tensor; zero: Tensor } => {
    const zero = E.keep(E.sum(s.get('zero')));
    const sum = E.tidy(() => {
      const a = i === 0 ? 1 : MOMENTUM;
      const xa = s.get('xa'), bounds = { lo: s.get('lo'), hi: s.get('hi') };
      const z = E.signStep(xa, s.get('grad'), s.get('step'), bounds.lo, bounds.hi);
      const xNew = project(E.add(E.add(xa, E.mul(E.sub(z, xa), a)), E.mul(E.sub(xa, s.get('xPrev')), 1 - a)), bounds);
      const { logits, obj, grad, zero: z0 } = inputGradient(model, xNew, label(), goal(), spec.loss);
      const better = E.gt(obj, s.get('objBest'));
      s.update({
        xPrev: xa, xa: xNew, grad, zero: z0, gradBest: pick(better, grad, s.get('gradBest')),
        increases: E.add(s.get('increases'), E.gt(obj, s.get('lossPrev'))), lossPrev: obj,
      });
      track(s, xNew, logits, obj, label());
      return E.sum(obj);
    });
    i++; sinceCheck++;
    if (checks.has(i)) {
      E.tidy(() => {
        // Halve the step where the loss rose in at most 75% of the steps since the last check, or
        // where the best loss did not move and the step was not just halved; those restart from the best point.
        const oscillated = E.le(s.get('increases'), OSCILLATION * sinceCheck);
        const stalled = E.mul(E.affine(s.get('reducedAtCheck'), -1, 1), E.ge(s.get('lossAtCheck'), s.get('objBest')));
        const halve = E.maximum(oscillated, stalled);
        s.update({
          step: E.where(halve, E.mul(s.get('step'), 0.5), s.get('step')), xa: pick(halve, s.get('xBest'), s.get('xa')),
          grad: pick(halve, s.get('gradBest'), s.get('grad')), reducedAtCheck: halve, lossAtCheck: s.get('objBest'), increases: E.zerosLike(s.get('increases')),
        });
      });
      sinceCheck = 0;
    }
    return { obj: sum, zero };
  };
  return {
    start, step,
    fooled: () => E.detach(s.get('fooled')),
    outcome: () => bestOf(s),
    select: (rows) => s.select(rows),
    dispose: () => { s.dispose(); start.dispose(); },
  };
};
