// The per-sample objectives an attack ascends, and the direction it climbs cross-entropy in.
// Every loss is written so that a larger value is worse for the model: CE to the true label,
// minus CE to a target, the Carlini-Wagner margin, and Croce and Hein's DLR (untargeted and
// targeted). A positive margin means the image is misclassified. The losses build autograd
// graphs, so they create intermediates in the caller's scope rather than in a tidy of their own.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';

export type LossName = 'ce' | 'margin' | 'dlr';

// Pushes a masked entry far below any logit, so max() and softmax() ignore it.
const BIG = 1e9;

const oneHot = (labels: Tensor, classes: number): Tensor =>
  E.eq(E.reshape(E.arange(classes), [1, classes]), E.reshape(E.cast(labels, 'float32'), [-1, 1]));

/** The label's logit per sample. */
const picked = (logits: Tensor, hot: Tensor): Tensor => E.sum(E.mul(logits, hot), 1);

/** The logits with the label's pushed below every other (so max, argmax and softmax skip it). */
const withoutLabel = (logits: Tensor, hot: Tensor): Tensor => E.sub(logits, E.mul(hot, BIG));

/** The largest logit other than the label's, per sample. */
const largestOther = (logits: Tensor, hot: Tensor): Tensor => E.max(withoutLabel(logits, hot), 1);

/** Per-sample int32 of the most likely class other than the label (APGD-T's first target). */
export const runnerUp = (logits: Tensor, y: Tensor): Tensor => E.tidy(() => E.argmax(withoutLabel(logits, oneHot(y, logits.shape[1]!)), -1));

/** Carlini and Wagner's margin max_{k != y} z_k - z_y: positive exactly when the prediction is not y. Any number of classes. */
export function marginLoss(logits: Tensor, y: Tensor): Tensor {
  const hot = oneHot(y, logits.shape[1]!);
  return E.sub(largestOther(logits, hot), picked(logits, hot));
}

/** The k-th largest logit per sample (k = 1, 2, ...), by masking the larger ones (ties count once). */
function kthLargest(logits: Tensor, k: number): Tensor {
  let rest = logits;
  for (let j = 1; j < k; j++) rest = E.sub(rest, E.mul(E.eq(rest, E.max(rest, 1, true)), BIG));
  return E.max(rest, 1);
}

function needClasses(logits: Tensor, min: number, what: string): void {
  const classes = logits.shape[1]!;
  if (classes < min) throw new Error(`medgrad: the ${what} loss needs at least ${min} classes (its denominator is a gap between sorted logits); this model has ${classes}. Use the margin or CE loss.`);
}

/**
 * Croce and Hein's difference-of-logits ratio, negated so that ascending it attacks:
 * -(z_y - max_{i != y} z_i) / (z_(1) - z_(3)). Invariant to shifts and scales of the logits.
 */
export function dlrLoss(logits: Tensor, y: Tensor): Tensor {
  needClasses(logits, 3, 'DLR');
  const hot = oneHot(y, logits.shape[1]!);
  const gap = E.add(E.sub(kthLargest(logits, 1), kthLargest(logits, 3)), 1e-12);
  return E.neg(E.div(E.sub(picked(logits, hot), largestOther(logits, hot)), gap));
}

/**
 * Targeted DLR toward t: -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2) as AutoAttack's APGD-T
 * uses it; with exactly 3 classes the denominator is z_(1) - z_(3).
 */
export function dlrTargetedLoss(logits: Tensor, y: Tensor, t: Tensor): Tensor {
  needClasses(logits, 3, 'targeted DLR');
  const classes = logits.shape[1]!;
  const low = classes >= 4 ? E.mul(E.add(kthLargest(logits, 3), kthLargest(logits, 4)), 0.5) : kthLargest(logits, 3);
  const gap = E.add(E.sub(kthLargest(logits, 1), low), 1e-12);
  return E.neg(E.div(E.sub(picked(logits, oneHot(y, classes)), picked(logits, oneHot(t, classes))), gap));
}

/** The per-sample objective: `loss` against the true label, or toward `target` when there is one. */
export function objective(logits: Tensor, y: Tensor, target: Tensor | null, loss: LossName): Tensor {
  switch (loss) {
    case 'ce': return target ? E.neg(E.crossEntropy(logits, target, { reduction: 'none' })) : E.crossEntropy(logits, y, { reduction: 'none' });
    case 'margin': return target ? E.neg(marginLoss(logits, target)) : marginLoss(logits, y);
    case 'dlr': return target ? dlrTargetedLoss(logits, y, target) : dlrLoss(logits, y);
  }
}

/**
 * Cross-entropy's gradient in the logits divided, per sample, by the probability of the classes
 * other than `label`: softmax over the others, minus one at the label (times `sign`). Dividing a
 * sample's gradient by a positive number leaves the sign of its input gradient unchanged, and
 * this form never underflows: a confidently classified image still gets a full-size direction.
 */
export function ceDirection(logits: Tensor, label: Tensor, sign: 1 | -1): Tensor {
  return E.noGrad(() => E.tidy(() => {
    const hot = oneHot(label, logits.shape[1]!);
    return E.mul(E.sub(E.softmax(withoutLabel(logits, hot), 1), hot), sign);
  }));
}
