// Attacking a batch: FGSM and PGD (Madry et al.), targeted or untargeted, APGD (apgd.ts), and
// random restarts. Everything stays on the GPU and nothing is read back, so adversarial
// training can call this inside a training step; a step costs one forward and one
// input-gradient backward (the weights are frozen, so no weight gradient is computed).
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { ball, type Box, type Classifier, inputGradient, misclassified, objective, project, randomStart } from './gradient.js';
import { apgdStepper } from './apgd.js';
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

/** The final iterate of one run of an attack, its logits and objective. */
export interface Outcome { xAdv: Tensor; logits: Tensor; obj: Tensor }

/**
 * One run of an attack from one start, advanced a step at a time. Its state lives outside any
 * scope between steps (so a caller may await between them); finish() hands the outcome to the
 * caller's scope and frees the rest.
 */
export interface Stepper {
  /** The summed objective at the start point, for attacks that evaluate it (APGD). */
  start: Tensor | null;
  /** One gradient step; returns the summed objective it measured (a scalar). */
  step(): Tensor;
  finish(): Outcome;
}

/**
 * Attacks a batch with frozen weights (see freeze()): FGSM, PGD or APGD by spec.kind, with
 * `spec.restarts` runs of which each sample keeps its worst. `target` is the least likely
 * class per sample for targeted attacks, null otherwise. Yields the number of steps done.
 */
export function* attackSteps(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, gen: E.Generator): Generator<number, Perturbation> {
  E.startScope();
  let result: Perturbation | undefined;
  try {
    const box = ball(x, eps);
    let best: Outcome | null = null;
    let trace: Tensor[] = [];
    for (let r = 0; r < spec.restarts; r++) {
      const run = (spec.kind === 'apgd' ? apgdStepper : pgdStepper)(model, x, y, target, spec, eps, box, gen);
      const steps: Tensor[] = run.start ? [run.start] : [];
      for (let s = 0; s < spec.steps; s++) {
        steps.push(run.step());
        yield r * spec.steps + s + 1;
      }
      const out = run.finish();
      if (r === 0) trace = [...steps, E.sum(out.obj)];
      best = best ? keepWorst(best, out, y) : out;
    }
    result = { ...best!, trace };
    return result;
  } finally {
    E.endScope(result);
  }
}

/** The whole attack at once (adversarial training and batch evaluation). */
export function perturb(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, gen: E.Generator): Perturbation {
  const it = attackSteps(model, x, y, target, spec, eps, gen);
  for (;;) { const r = it.next(); if (r.done) return r.value; }
}

/**
 * The same attack, waiting for the GPU between steps so that a page stays responsive and can
 * show progress. One attack at a time: tensors created elsewhere during the waits join its scope.
 */
export async function perturbAsync(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, gen: E.Generator,
  onStep?: (done: number, total: number) => void): Promise<Perturbation> {
  const it = attackSteps(model, x, y, target, spec, eps, gen);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    onStep?.(r.value, spec.steps * spec.restarts);
    await E.fence();
  }
}

/**
 * FGSM (one step of eps from the clean image; the paper's targeted version is
 * x_adv = clip(x - eps sign(grad CE(x, target)), 0, 1)) and PGD: steps of eps * stepFraction
 * along the gradient's sign, each projected onto the eps-ball and [0, 1].
 */
function pgdStepper(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, box: Box, gen: E.Generator): Stepper {
  const alpha = spec.kind === 'fgsm' ? eps : eps * spec.stepFraction;
  let xa = E.keep(spec.randomStart && eps > 0 ? randomStart(x, eps, box, gen) : E.detach(x));
  return {
    start: null,
    step: () => E.tidy(() => {
      const { obj, grad } = inputGradient(model, xa, y, target, spec.loss);
      const next = E.keep(project(E.add(xa, E.mul(E.sign(grad), alpha)), box));
      xa.dispose();
      xa = next;
      return E.sum(obj);
    }),
    finish: () => { const xAdv = E.detach(xa); xa.dispose(); return evaluateAt(model, xAdv, y, target, spec); },
  };
}

/** The logits and objective at an attack's final point. */
export function evaluateAt(model: Classifier, xAdv: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec): Outcome {
  return E.noGrad(() => {
    const logits = model.forward(xAdv);
    return { xAdv, logits, obj: objective(logits, y, target, spec.loss) };
  });
}

/**
 * Per sample, the worse (for the model) of two attack outcomes: a misclassification beats a
 * correct prediction, and between equals the higher objective wins.
 */
export function keepWorst(a: Outcome, b: Outcome, y: Tensor): Outcome {
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
