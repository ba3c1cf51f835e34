// The training step and epoch loop that the Node trainer (trainer.ts) and the page
// (experiments/web/main.ts) both run: forward, mean cross-entropy, backward and the optimiser's
// update, on Madry's PGD images when asked. Platform-neutral: it imports the engine's index, not
// engine/node.ts, and nothing that reaches a Node module, so the page bundles it.
import * as E from '../../engine/index.js';
import { Adam, type Optimizer } from '../../nn/optim.js';
import type { LossScaler } from '../../nn/amp.js';
import { makeBatch, type BatchOptions } from '../data/augment.js';
import type { ImageDataset } from '../data/dataset.js';
import { freeze, type Classifier } from '../attacks/gradient.js';
import { perturb } from '../attacks/pgd.js';
import type { AttackSpec } from '../attacks/spec.js';

/** Adam with Keras-style L2 (loss += l2 * sum(w^2)) on the convolution kernels only (rank-4 `.weight`s). */
export function adamFor(model: Classifier, o: { lr?: number; l2?: number } = {}): Adam {
  const convKernels = model.namedParameters().filter(([n, t]) => n.endsWith('.weight') && t.rank === 4).map(([, t]) => t);
  const others = model.parameters().filter((t) => !convKernels.includes(t));
  return new Adam([{ params: convKernels, l2: o.l2 }, { params: others }], { lr: o.lr });
}

/** A batch from makeBatch as tensors: x [n, channels, size, size], y [n] int32. */
export function batchTensors(b: { x: Float32Array; y: Int32Array }, channels: number, size: number): { x: E.Tensor; y: E.Tensor } {
  return { x: E.tensor(b.x, [b.y.length, channels, size, size]), y: E.tensor(b.y, [b.y.length]) };
}

/** Adds a batch's summed loss and number of correct predictions to the running [loss, correct] on the GPU. */
export function tally(sums: E.Tensor, lossSum: E.Tensor, logits: E.Tensor, y: E.Tensor): void {
  const correct = E.sum(E.eq(E.cast(E.argmax(logits, -1), 'float32'), E.cast(y, 'float32')));
  sums.assign(E.add(sums, E.concat([E.reshape(lossSum, [1]), E.reshape(correct, [1])])));
}

/** Madry adversarial training: the batch is replaced by its untargeted attack images (for PGD, the last iterate: bestIterate false). */
export interface Adversarial { attack: AttackSpec; eps: number; generator: E.Generator }

export interface StepOptions {
  adversarial?: Adversarial;
  /** A running [loss sum, correct count] on the GPU that this batch is added to; nothing is read back. */
  sums?: E.Tensor;
}

/**
 * One optimisation step on a batch (x [n, c, h, w], y [n] int32 labels): the attack images if
 * adversarial, forward, mean cross-entropy, backward, the optimiser's update, gradients cleared.
 * Queues GPU work only (no read-back). Returns the batch's mean loss, detached; the caller disposes it.
 */
export function trainStep(model: Classifier, opt: Optimizer, x: E.Tensor, y: E.Tensor, o: StepOptions = {}): E.Tensor {
  return E.tidy(() => {
    const adv = o.adversarial;
    if (adv) {
      const restore = freeze(model);
      try { x = perturb(model, x, y, null, adv.attack, adv.eps, adv.generator).xAdv; } finally { restore(); }
    }
    const logits = model.forward(x);
    const loss = E.crossEntropy(logits, y);
    loss.backward();
    opt.step();
    opt.zeroGrad();
    const sums = o.sums;
    if (sums) E.noGrad(() => tally(sums, E.mul(loss, y.shape[0]!), logits, y));
    return E.detach(loss);
  });
}

/**
 * trainStep in mixed precision (nn/amp.ts): the batch goes in as float16, the loss is scaled for
 * backward, and the optimiser steps on the unscaled float32 gradients of the float32 weights
 * unless some gradient is Inf/NaN (then the step is skipped and the scale halved). Waits for
 * the GPU once per step (the finite check). Adversarial batches are not supported here yet.
 */
export async function trainStepMixed(model: Classifier, opt: Optimizer, x: E.Tensor, y: E.Tensor, scaler: LossScaler, o: StepOptions = {}): Promise<E.Tensor> {
  if (o.adversarial) throw new Error('medgrad: mixed precision does not support adversarial training yet; use precision float32');
  E.startScope();
  let out: E.Tensor | undefined;
  try {
    const logits = model.forward(E.cast(x, 'float16'));
    const loss = E.crossEntropy(logits, y);
    scaler.scaleLoss(loss).backward();
    const sums = o.sums;
    if (sums) E.noGrad(() => tally(sums, E.mul(loss, y.shape[0]!), logits, y));
    out = E.detach(loss);
    if (await scaler.unscale(model.parameters())) opt.step();
    opt.zeroGrad();
    return out;
  } finally {
    E.endScope(out);
  }
}

/** What an epoch's progress callback sees after each step. */
export interface StepReport {
  /** 1-based step number, of `steps`. */
  step: number;
  steps: number;
  /** Images trained on so far this epoch. */
  seen: number;
  /** This step's mean loss, on the GPU (reading it waits for the step); disposed when the callback returns. */
  loss: E.Tensor;
  /** The epoch's running [loss sum, correct count] on the GPU, likewise. */
  sums: E.Tensor;
}

export interface EpochOptions {
  ds: ImageDataset;
  /** The epoch's images (indices into ds), in training order. */
  order: readonly number[];
  batchSize: number;
  channels: number;
  augment?: BatchOptions['augment'];
  adversarial?: Adversarial;
  /** Mixed precision: each step is trainStepMixed with this loss scaler. */
  scaler?: LossScaler;
  /** Called after each step is queued, once the step before it has finished; awaited. */
  onStep?: (r: StepReport) => void | Promise<void>;
}

/**
 * One epoch in training mode: `order` in batches (assembled and augmented on the CPU), one
 * trainStep each. One step stays in flight: each step is queued before waiting for the one before
 * it, so the CPU builds the next batch while the GPU runs, and the loop yields to the event loop
 * between steps (a page stays responsive). The only read-back is the epoch's mean loss and
 * accuracy at the end (and whatever onStep reads).
 */
export async function trainEpoch(model: Classifier, opt: Optimizer, o: EpochOptions): Promise<{ loss: number; acc: number }> {
  model.train();
  const n = o.order.length, steps = Math.ceil(n / o.batchSize);
  const sums = E.zeros([2]);
  try {
    let inFlight: Promise<void> | null = null;
    for (let s = 0; s < steps; s++) {
      const b = makeBatch(o.ds, o.order.slice(s * o.batchSize, (s + 1) * o.batchSize), { channels: o.channels, augment: o.augment });
      let loss: E.Tensor;
      if (o.scaler) {
        const t = batchTensors(b, o.channels, o.ds.size);
        try { loss = await trainStepMixed(model, opt, t.x, t.y, o.scaler, { adversarial: o.adversarial, sums }); } finally { t.x.dispose(); t.y.dispose(); }
      } else {
        loss = E.tidy(() => {
          const t = batchTensors(b, o.channels, o.ds.size);
          return trainStep(model, opt, t.x, t.y, { adversarial: o.adversarial, sums });
        });
      }
      const done = E.fence();
      if (inFlight) await inFlight;
      inFlight = done;
      try {
        await o.onStep?.({ step: s + 1, steps, seen: Math.min((s + 1) * o.batchSize, n), loss, sums });
      } finally {
        loss.dispose();
      }
    }
    const [l, c] = Array.from(await sums.data());
    return { loss: l! / n, acc: c! / n };
  } finally {
    sums.dispose();
  }
}
