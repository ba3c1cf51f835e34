// Batch-norm statistics recomputed for the current weights (PyTorch's swa_utils.update_bn,
// "precise BN"). Running statistics are an exponential average over the last ~1/momentum
// training steps, taken while the weights moved: with Keras' momentum 0.99 and a few hundred
// steps of Adam, a first layer's running variance can be several times its current one, and the
// model in inference mode then predicts one class for every image. Averaging the batch
// statistics of a pass over training images, with the weights fixed, removes that lag.
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { Module } from './module.js';
import { BatchNorm2d } from './layers.js';

function batchNorms(m: Module, out: BatchNorm2d[] = []): BatchNorm2d[] {
  if (m instanceof BatchNorm2d) out.push(m);
  for (const [, c] of m.namedChildren()) batchNorms(c, out);
  return out;
}

/**
 * Sets every BatchNorm2d's running mean and variance to the average of its batch statistics over
 * `batches` (inputs only; each is disposed after its forward pass), then restores each layer's
 * momentum and the model's training mode. Returns the number of batches used. Without batch
 * norm layers or batches, nothing changes.
 */
export function updateBn(model: Module & { forward(x: Tensor): Tensor }, batches: Iterable<Tensor>): number {
  const layers = batchNorms(model);
  if (!layers.length) return 0;
  const momenta = layers.map((l) => l.momentum);
  const wasTraining = model.training;
  let n = 0;
  try {
    model.train();
    for (const x of batches) {
      // Reset at the first batch, so that an empty iterable leaves the statistics as they were.
      if (n === 0) for (const l of layers) { l.resetRunningStats(); l.momentum = null; }
      try { E.noGrad(() => E.tidy(() => { model.forward(x); })); } finally { x.dispose(); }
      n++;
    }
  } finally {
    layers.forEach((l, i) => { l.momentum = momenta[i]!; });
    model.train(wasTraining);
  }
  return n;
}
