// Attacking a batch: FGSM and PGD (Madry et al.), targeted or untargeted, APGD (apgd.ts), and
// random restarts. Everything stays on the GPU and nothing is read back, so adversarial
// training can call this inside a training step; a step costs one forward and one
// input-gradient backward (the weights are frozen, so no weight gradient is computed).
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { ball, type Box, type Classifier, inputGradient, misclassified, randomStart } from './gradient.js';
import { objective } from './losses.js';
import { apgdStepper } from './apgd.js';
import { AttackState, bestOf, pick, track } from './state.js';
import type { AttackSpec } from './spec.js';

/** An attack's result per sample: the adversarial images, their logits and objective. */
export interface Outcome { xAdv: Tensor; logits: Tensor; obj: Tensor }

export interface Perturbation extends Outcome {
  /** Summed objective before each step and after the last: the attack's loss curve (scalars). */
  trace: Tensor[];
}

/**
 * One run of an attack from one start, advanced a step at a time. Its state lives outside any
 * scope between steps (so a caller may await between them, or read which samples are done and
 * drop them with select()); outcome() hands the current result to the caller's scope.
 */
export interface Stepper {
  /** The summed objective at the start point. */
  readonly start: Tensor;
  /** One step; returns the summed objective at the new point and how many samples had a zero input gradient (scalars). */
  step(): { obj: Tensor; zero: Tensor };
  /** 1 for each sample fooled at some point so far. */
  fooled(): Tensor;
  /** The result so far: with `spec.bestIterate` the best point of every iterate, else the last. */
  outcome(): Outcome;
  /** Continues with these samples only (sorted indices into the current batch). */
  select(rows: readonly number[]): void;
  dispose(): void;
}

export type StepperFactory = (model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, spec: AttackSpec, eps: number, box: Box, gen: E.Generator, restart: number) => Stepper;

/** Where a run starts: the clean image for restart 0 of a `cleanFirst` attack or one without random start, else a random point of the ball. */
export const startPoint = (x: Tensor, spec: AttackSpec, eps: number, box: Box, gen: E.Generator, restart: number): Tensor =>
  spec.randomStart && eps > 0 && !(spec.cleanFirst && restart === 0) ? randomStart(x, eps, box, gen) : E.detach(x);

/**
 * FGSM (one step of eps from the clean image; the paper's targeted version is
 * x_adv = clip(x - eps sign(grad CE(x, target)), 0, 1)) and PGD: steps of eps * stepFraction
 * along the gradient's sign, each projected onto the eps-ball and [0, 1]. The gradient at the
 * last point is never needed, so the last evaluation is a forward pass only.
 */
export const pgdStepper: StepperFactory = (model, x, y, target, spec, eps, box, gen, restart) => {
  const alpha = spec.kind === 'fgsm' ? eps : eps * spec.stepFraction;
  const s = new AttackState();
  let done = 0;
  const evaluate = (xa: Tensor, withGradient: boolean): Tensor => E.tidy(() => {
    const ev = withGradient ? inputGradient(model, xa, y, target, spec.loss) : E.noGrad(() => {
      const logits = model.forward(xa);
      return { logits, obj: objective(logits, y, target, spec.loss), grad: null, zero: null };
    });
    if (spec.bestIterate) track(s, xa, ev.logits, ev.obj, y);
    s.update({ xa, logits: ev.logits, obj: ev.obj, grad: ev.grad, zero: ev.zero });
    return E.sum(ev.obj);
  });
  // Views, so that select() and dispose() never touch the caller's tensors.
  s.update({ y: E.detach(y), target: target && E.detach(target), lo: E.detach(box.lo), hi: E.detach(box.hi) });
  const start = E.keep(evaluate(startPoint(x, spec, eps, box, gen, restart), true));
  return {
    start,
    step: () => {
      const zero = E.keep(E.sum(s.get('zero')));
      done++;
      const next = E.signStep(s.get('xa'), s.get('grad'), alpha, s.get('lo'), s.get('hi'));
      return { obj: evaluate(next, done < spec.steps), zero };
    },
    fooled: () => (spec.bestIterate ? E.detach(s.get('fooled')) : misclassified(s.get('logits'), s.get('y'))),
    outcome: () => (spec.bestIterate ? bestOf(s) : E.tidy(() => ({ xAdv: E.detach(s.get('xa')), logits: E.detach(s.get('logits')), obj: E.detach(s.get('obj')) }))),
    select: (rows) => { s.select(rows); y = s.get('y'); target = s.has('target') ? s.get('target') : null; },
    dispose: () => { s.dispose(); start.dispose(); },
  };
};

export const stepperFor = (spec: AttackSpec): StepperFactory => {
  if (spec.kind === 'square') throw new Error('medgrad: the Square attack is gradient-free and runs through squareAttack(), not a stepper');
  return spec.kind === 'apgd' ? apgdStepper : pgdStepper;
};

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
      const run = stepperFor(spec)(model, x, y, target, spec, eps, box, gen, r);
      const sums: Tensor[] = [E.detach(run.start)];
      for (let s = 0; s < spec.steps; s++) {
        const { obj, zero } = run.step();
        sums.push(obj);
        zero.dispose();
        yield r * spec.steps + s + 1;
      }
      const out = run.outcome();
      run.dispose();
      if (r === 0) trace = sums;
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
 * Per sample, the worse (for the model) of two attack outcomes: a misclassification beats a
 * correct prediction, and between equals the higher objective wins.
 */
export function keepWorst(a: Outcome, b: Outcome, y: Tensor): Outcome {
  return E.noGrad(() => E.tidy(() => {
    const wrongA = misclassified(a.logits, y);
    const wrongB = misclassified(b.logits, y);
    const takeB = E.maximum(E.gt(wrongB, wrongA), E.mul(E.eq(wrongB, wrongA), E.gt(b.obj, a.obj)));
    return { xAdv: pick(takeB, b.xAdv, a.xAdv), logits: pick(takeB, b.logits, a.logits), obj: pick(takeB, b.obj, a.obj) };
  }));
}
