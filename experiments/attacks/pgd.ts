// Attacking a batch: FGSM and PGD (Madry et al.), targeted or untargeted, APGD (apgd.ts), and
// random restarts. Everything stays on the GPU and nothing is read back, so adversarial
// training can call this inside a training step; a step costs one forward and one
// input-gradient backward (the weights are frozen, so no weight gradient is computed).
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { ball, type Box, type Classifier, inputGradient, misclassified, objective, project, randomStart } from './gradient.js';
import { apgdRun } from './apgd.js';
import type { AttackSpec } from './spec.js';

export interface Perturbation {
  /** The adversarial images (each sample's worst case over restarts). */
  xAdv: Tensor;
  /** Logits at xAdv. */
  logits: Tensor;
  /** Objective per sample at xAdv (what the attack ascended). */
  obj: Tensor;
  /** Summed objective before each step and after the last: the attack's loss curve (scalars). */
  trace: Tensor[];
}

/** One run of an attack from one start: the final iterate, its logits and objective, and the loss curve. */
export interface Run { xAdv: Tensor; logits: Tensor; obj: Tensor; steps: Tensor[] }

/**
 * Attacks a batch with frozen weights (see freeze()): FGSM, PGD or APGD by spec.kind, with
 * `spec.restarts` runs of which each sample keeps its worst. `target` is the least likely
 * class per sample for targeted attacks, null otherwise.
 */
export function perturb(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, gen: E.Generator): Perturbation {
  return E.tidy(() => {
    const box = ball(x, eps);
    let best: Omit<Perturbation, 'trace'> | null = null;
    let trace: Tensor[] = [];
    for (let r = 0; r < spec.restarts; r++) {
      const run = E.tidy(() => (spec.kind === 'apgd' ? apgdRun : pgdRun)(model, x, y, target, spec, eps, box, gen));
      if (r === 0) trace = run.steps;
      best = best ? keepWorst(best, run, y) : run;
    }
    return { ...best!, trace };
  });
}

/**
 * FGSM (one step of eps from the clean image; the paper's targeted version is
 * x_adv = clip(x - eps sign(grad CE(x, target)), 0, 1)) and PGD: steps of eps * stepFraction
 * along the gradient's sign, each projected onto the eps-ball and [0, 1].
 */
function pgdRun(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, box: Box, gen: E.Generator): Run {
  const alpha = spec.kind === 'fgsm' ? eps : eps * spec.stepFraction;
  let xa = spec.randomStart && eps > 0 ? randomStart(x, eps, box, gen) : x;
  const steps: Tensor[] = [];
  for (let s = 0; s < spec.steps; s++) {
    const next: [Tensor, Tensor] = E.tidy(() => {
      const { obj, grad } = inputGradient(model, xa, y, target, spec.loss);
      return [project(E.add(xa, E.mul(E.sign(grad), alpha)), box), E.sum(obj)];
    });
    if (xa !== x) xa.dispose();
    xa = next[0];
    steps.push(next[1]);
  }
  return finish(model, xa === x ? E.detach(x) : xa, y, target, spec, steps);
}

/** Evaluates the final iterate: its logits and objective, appended to the loss curve. */
export function finish(model: Classifier, xAdv: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, steps: Tensor[]): Run {
  return E.noGrad(() => {
    const logits = model.forward(xAdv);
    const obj = objective(logits, y, target, spec.loss);
    return { xAdv, logits, obj, steps: [...steps, E.sum(obj)] };
  });
}

/**
 * Per sample, the worse (for the model) of two attack outcomes: a misclassification beats a
 * correct prediction, and between equals the higher objective wins.
 */
export function keepWorst<T extends { xAdv: Tensor; logits: Tensor; obj: Tensor }>(a: T, b: T, y: Tensor): { xAdv: Tensor; logits: Tensor; obj: Tensor } {
  return E.noGrad(() => E.tidy(() => {
    const wrongA = misclassified(a.logits, y);
    const wrongB = misclassified(b.logits, y);
    const takeB = E.maximum(E.gt(wrongB, wrongA), E.mul(E.eq(wrongB, wrongA), E.gt(b.obj, a.obj)));
    const n = y.shape[0]!;
    return {
      xAdv: E.where(E.reshape(takeB, [n, 1, 1, 1]), b.xAdv, a.xAdv),
      logits: E.where(E.reshape(takeB, [n, 1]), b.logits, a.logits),
      obj: E.where(takeB, b.obj, a.obj),
    };
  }));
}
