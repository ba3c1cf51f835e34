// The pieces every attack shares: the per-sample objective it ascends, its gradient with
// respect to the input images (weights frozen, so no weight gradient is ever computed), and
// the projection onto the eps-ball intersected with [0, 1].
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { Module } from '../../nn/module.js';
import { ceDirection, type LossName, objective } from './losses.js';

export type Classifier = Module & { forward(x: Tensor): Tensor };

/**
 * Puts the model in inference mode with frozen weights for the attack (the protocol attacks
 * with BatchNorm's running statistics); the returned function restores both.
 */
export function freeze(model: Classifier): () => void {
  const training = model.training;
  const wanted = model.parameters().map((p) => p.requiresGrad);
  model.eval();
  model.requiresGrad_(false);
  return () => {
    model.train(training);
    model.parameters().forEach((p, i) => { p.requiresGrad = wanted[i]!; });
  };
}

/** What one gradient evaluation gives an attack, per sample, all outside any graph. */
export interface Evaluation {
  logits: Tensor;
  obj: Tensor;
  /** The objective's input gradient (for CE, a positive per-sample multiple of it: see ceDirection). */
  grad: Tensor;
  /** 1 where the input gradient is exactly zero (the attack cannot move that image). */
  zero: Tensor;
}

/** The logits and objective per sample at x, and the direction of steepest ascent of the objective in x. */
export function inputGradient(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, loss: LossName): Evaluation {
  return E.tidy(() => {
    const xi = E.detach(x);
    xi.requiresGrad = true;
    const logits = model.forward(xi);
    const fixed = E.detach(logits);
    // Cross-entropy is climbed along its exact logit direction (never rounded to 0); the other
    // losses are well scaled and go through autograd.
    const seed = loss === 'ce' ? E.sum(E.mul(logits, ceDirection(fixed, target ?? y, target ? -1 : 1))) : E.sum(objective(logits, y, target, loss));
    const [grad] = E.grad(seed, [xi]);
    const obj = E.noGrad(() => objective(fixed, y, target, loss));
    const zero = E.eq(E.max(E.abs(grad!), [1, 2, 3]), 0);
    return { logits: fixed, obj, grad: grad!, zero };
  });
}

/** 1 where the prediction is not the label, else 0 (float32 [batch]). */
export const misclassified = (logits: Tensor, y: Tensor): Tensor =>
  E.tidy(() => E.ne(E.cast(E.argmax(logits, -1), 'float32'), E.cast(y, 'float32')));

export interface Box { lo: Tensor; hi: Tensor }

/** The box an L-infinity attack may move in: [max(x - eps, 0), min(x + eps, 1)]. */
export function ball(x: Tensor, eps: number): Box {
  return E.tidy(() => ({ lo: E.clamp(E.sub(x, eps), 0, 1), hi: E.clamp(E.add(x, eps), 0, 1) }));
}

/** Projects onto the box (per element, so it is the exact L-infinity projection clipped to [0, 1]). */
export const project = (x: Tensor, box: Box): Tensor => E.minimum(E.maximum(x, box.lo), box.hi);

/** A uniform random point of the box around x, from a seeded generator. */
export function randomStart(x: Tensor, eps: number, box: Box, gen: E.Generator): Tensor {
  return E.tidy(() => project(E.add(x, E.rand(x.shape, { low: -eps, high: eps, generator: gen })), box));
}

/** Per-sample int32 of the least likely class under the clean prediction (the paper's target). */
export function leastLikely(logits: Tensor): Tensor {
  return E.argmin(logits, -1);
}

/** The rows `rows` (sorted batch indices) of a batch-first tensor, gathered as runs of consecutive rows. */
export function takeRows(t: Tensor, rows: readonly number[]): Tensor {
  if (rows.length === t.shape[0] && rows.every((r, i) => r === i)) return E.tidy(() => E.detach(t));
  const runs: Array<[number, number]> = [];
  for (const r of rows) {
    const last = runs[runs.length - 1];
    if (last && last[1] === r) last[1] = r + 1;
    else runs.push([r, r + 1]);
  }
  return E.tidy(() => {
    const parts = runs.map(([a, b]) => E.slice(t, [a], [b]));
    return parts.length === 1 ? E.detach(parts[0]!) : E.concat(parts, 0);
  });
}
