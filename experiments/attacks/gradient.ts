// The pieces every attack shares: the per-sample objective it ascends, its gradient with
// respect to the input images (weights frozen, so no weight gradient is ever computed), and
// the projection onto the eps-ball intersected with [0, 1].
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { Module } from '../../nn/module.js';
import type { AttackSpec } from './spec.js';

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

/**
 * Croce and Hein's difference-of-logits ratio, negated so that ascending it attacks:
 * -(z_y - max_{i != y} z_i) / (z_(1) - z_(3)), where z_(k) is the k-th largest logit.
 * Invariant to shifts and scales of the logits; needs at least 3 classes.
 */
export function dlrLoss(logits: Tensor, y: Tensor): Tensor {
  const classes = logits.shape[1]!;
  if (classes < 3) throw new Error(`medgrad: the DLR loss needs at least 3 classes (its denominator is the gap to the third largest logit); this model has ${classes}. Use APGD-CE.`);
  const BIG = 1e9;
  const oneHot = E.eq(E.reshape(E.arange(classes), [1, classes]), E.reshape(E.cast(y, 'float32'), [-1, 1]));
  const zy = E.sum(E.mul(logits, oneHot), 1);
  const otherMax = E.max(E.sub(logits, E.mul(oneHot, BIG)), 1);
  const top1 = E.max(logits, 1, true);
  const without1 = E.sub(logits, E.mul(E.eq(logits, top1), BIG));
  const without2 = E.sub(without1, E.mul(E.eq(without1, E.max(without1, 1, true)), BIG));
  const gap = E.add(E.sub(E.reshape(top1, [-1]), E.max(without2, 1)), 1e-12);
  return E.neg(E.div(E.sub(zy, otherMax), gap));
}

/** The per-sample objective an attack ascends: CE to the true label, -CE to a target, or DLR. */
export function objective(logits: Tensor, y: Tensor, target: Tensor | null, loss: AttackSpec['loss']): Tensor {
  if (loss === 'dlr') return dlrLoss(logits, y);
  return target ? E.neg(E.crossEntropy(logits, target, { reduction: 'none' })) : E.crossEntropy(logits, y, { reduction: 'none' });
}

/** The logits and objective per sample at x, and the objective's gradient with respect to x (all outside any graph). */
export function inputGradient(model: Classifier, x: Tensor, y: Tensor, target: Tensor | null, loss: AttackSpec['loss']): { logits: Tensor; obj: Tensor; grad: Tensor } {
  return E.tidy(() => {
    const xi = E.detach(x);
    xi.requiresGrad = true;
    const logits = model.forward(xi);
    const obj = objective(logits, y, target, loss);
    const [grad] = E.grad(E.sum(obj), [xi]);
    return { logits: E.detach(logits), obj: E.detach(obj), grad: grad! };
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
