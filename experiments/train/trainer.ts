// Standard training: mini-batch Adam on cross-entropy with the protocol's augmentation,
// validation every epoch, the best validation epoch's weights kept, and a checkpoint after
// every epoch from which --resume continues with results identical to an uninterrupted run
// (data order and augmentation are drawn per epoch from the seed; kernels are deterministic).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../engine/node.js';
import { createModel, type ModelName } from '../../nn/models.js';
import type { Module } from '../../nn/module.js';
import { updateBn } from '../../nn/update-bn.js';
import { LossScaler, parsePrecision, type Precision } from '../../nn/amp.js';
import { makeBatch } from '../data/augment.js';
import type { ImageDataset, Splits } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { bestWeightsFile, checkpointFiles, loadTensors, publishBest, readSidecar, saveCheckpoint } from './checkpoint.js';
import { Progress } from './progress.js';
import { attackConfig } from '../attacks/spec.js';
import { adamFor, batchTensors, tally, trainEpoch } from './step.js';

/** True once the training loss has not improved on its best for `patience` epochs. */
function stalled(history: readonly EpochRecord[], patience: number | undefined): boolean {
  if (!patience || history.length <= patience) return false;
  const best = Math.min(...history.slice(0, -patience).map((h) => h.trainLoss));
  return history.slice(-patience).every((h) => h.trainLoss >= best);
}

/** True once validation accuracy has not beaten its best for `patience` epochs (early stopping). */
function noValGain(state: { epoch: number; bestEpoch: number }, patience: number | undefined): boolean {
  return !!patience && state.bestEpoch > 0 && state.epoch - state.bestEpoch >= patience;
}

export interface TrainConfig {
  model: ModelName;
  imageSize: number;
  channels: number;
  classes: number;
  smallInput: boolean;
  epochs: number;
  batchSize: number;
  lr: number;
  /** Epoch from which the learning rate is lr / 10 (the protocol: 80 of 100); null for none. */
  lrDropEpoch: number | null;
  /** Keras-style L2 on convolution kernels (the ResNets use 1e-4). */
  l2: number;
  augment: boolean;
  seed: number;
  /** Batch-norm momentum as the weight of the new batch (Keras' 0.99 is 0.01 here). */
  bnMomentum?: number;
  /** Madry adversarial training: each batch is replaced by its untargeted PGD images (eps as a fraction). */
  adversarial?: { eps: number; steps: number; stepFraction: number };
  /** Weights (a safetensors file) to start from instead of a fresh initialisation. */
  init?: string;
  /** Which weights the run ends with: the best validation accuracy (default) or the last epoch. */
  selectBy?: 'val-acc' | 'last';
  /** Stop once the training loss has not improved for this many epochs ("until the loss stops improving"). */
  patience?: number;
  /** Early stopping: stop once validation accuracy has not beaten its best for this many epochs (the best epoch's weights are kept). */
  valPatience?: number;
  /** Before each validation, batch-norm statistics recomputed on this many training images (updateBn); absent: the running averages. */
  bnRecalibration?: number;
  /** 'mixed': float16 activations, float32 master weights, dynamic loss scaling (nn/amp.ts); evaluation stays float32. Default float32. */
  precision?: Precision;
}

export interface EpochRecord { epoch: number; lr: number; trainLoss: number; trainAcc: number; valLoss: number; valAcc: number; seconds: number; imagesPerSecond: number }

/** How the run's data was chosen, so --resume rebuilds the same splits. */
export interface RunSpec { data: string; split: string; splitSeed: number; count: number }

export interface TrainState { config: TrainConfig; run?: RunSpec; data: { source: string; split: string; classes: string[]; train: number; val: number; test: number }; epoch: number; optimizerStep: number; bestEpoch: number; bestValAcc: number; history: EpochRecord[]; lossScale?: ReturnType<LossScaler['state']> }

export interface TrainResult { state: TrainState; test: { loss: number; acc: number } }

export function buildModel(c: TrainConfig): Module & { forward(x: E.Tensor): E.Tensor } {
  return createModel(c.model, { imageSize: c.imageSize, inChannels: c.channels, classes: c.classes, smallInput: c.smallInput, seed: c.seed, bnMomentum: c.bnMomentum });
}

/** Loss and accuracy of a model (inference mode) on a set of images. */
export async function evaluate(model: Module & { forward(x: E.Tensor): E.Tensor }, ds: ImageDataset, idx: number[], channels: number, batchSize = 128): Promise<{ loss: number; acc: number }> {
  model.eval();
  const sums = E.zeros([2]);
  for (let k = 0; k < idx.length; k += batchSize) {
    const b = makeBatch(ds, idx.slice(k, k + batchSize), { channels });
    E.noGrad(() => E.tidy(() => {
      const { x, y } = batchTensors(b, channels, ds.size);
      const logits = model.forward(x);
      const loss = E.crossEntropy(logits, y, { reduction: 'sum' });
      tally(sums, loss, logits, y);
    }));
  }
  const [loss, correct] = Array.from(await sums.data());
  sums.dispose();
  return { loss: loss! / Math.max(idx.length, 1), acc: correct! / Math.max(idx.length, 1) };
}

/**
 * updateBn over the first `bnRecalibration` images of a fixed shuffle of the training split,
 * unaugmented, in whole batches of the training batch size (the statistics the layers trained with).
 */
function recalibrate(model: Module & { forward(x: E.Tensor): E.Tensor }, ds: ImageDataset, train: readonly number[], c: TrainConfig): void {
  const idx = new E.Generator(c.seed * 7907 + 1).shuffle([...train]).slice(0, c.bnRecalibration);
  const size = Math.min(c.batchSize, idx.length);
  function* batches(): Generator<E.Tensor> {
    for (let k = 0; k + size <= idx.length; k += size) {
      const { x, y } = batchTensors(makeBatch(ds, idx.slice(k, k + size), { channels: c.channels }), c.channels, ds.size);
      y.dispose();
      yield x;
    }
  }
  updateBn(model, batches());
}

export interface RunOptions {
  out: string;
  ds: ImageDataset;
  splits: Splits;
  /** Continue from the checkpoint in `out`. */
  resume?: boolean;
  run?: RunSpec;
  progress?: Progress;
  log?: (line: string) => void;
  /**
   * Throws when this run may no longer write into `out` (a study cell whose lease another task
   * took over): called before each epoch and before every write, so a stalled run stops instead
   * of interleaving its checkpoints with its successor's.
   */
  checkOwnership?: () => void;
}

export async function train(config: TrainConfig, o: RunOptions): Promise<TrainResult> {
  mkdirSync(o.out, { recursive: true });
  const log = o.log ?? console.log;
  const precision = parsePrecision(config.precision, 'medgrad train');
  if (precision === 'mixed' && config.adversarial) throw new Error('medgrad train: mixed precision does not support adversarial training yet; use precision float32');
  if (precision === 'mixed' && !E.getDevice().features.has('shader-f16')) throw new Error(`medgrad train: precision mixed needs the adapter feature 'shader-f16', which this adapter (${E.getDevice().info.description || E.getDevice().info.vendor}) lacks; use float32`);
  const model = buildModel(config);
  const opt = adamFor(model, { lr: config.lr, l2: config.l2 });
  // The model and optimiser hold GPU memory: freed however the run ends (an error, a lost lease).
  try {
    const scaler = precision === 'mixed' ? new LossScaler() : undefined;
    let state: TrainState = {
      config, run: o.run, epoch: 0, optimizerStep: 0, bestEpoch: -1, bestValAcc: -1, history: [],
      data: { source: o.ds.source, split: o.splits.kind, classes: o.ds.classes, train: o.splits.train.length, val: o.splits.val.length, test: o.splits.test.length },
    };
    if (config.init && !o.resume) {
      const w = loadTensors(config.init);
      try { model.loadStateDict(w); } finally { E.dispose(w); }
    }
    // Madry's training attack takes PGD's last iterate (an evaluation keeps the best one).
    const pgd = config.adversarial ? { ...attackConfig('pgd', { steps: config.adversarial.steps, stepFraction: config.adversarial.stepFraction }), bestIterate: false } : null;
    if (o.resume) {
      state = readSidecar<TrainState>(o.out).state;
      const files = checkpointFiles(o.out);
      const w = loadTensors(files.model);
      try { model.loadStateDict(w); } finally { E.dispose(w); }
      const m = loadTensors(files.optimizer);
      try { opt.loadStateTensors(m); } finally { E.dispose(m); }
      opt.step_ = state.optimizerStep;
      if (scaler && state.lossScale) scaler.load(state.lossScale);
      log(`resuming ${o.out} after epoch ${state.epoch} of ${config.epochs}`);
    }
    const progress = o.progress ?? new Progress();
    const steps = Math.ceil(o.splits.train.length / config.batchSize);
    for (let epoch = state.epoch + 1; epoch <= config.epochs && !stalled(state.history, config.patience) && !noValGain(state, config.valPatience); epoch++) {
      o.checkOwnership?.();
      opt.lr = config.lrDropEpoch !== null && epoch > config.lrDropEpoch ? config.lr / 10 : config.lr;
      const order = new E.Generator(config.seed * 7919 + epoch).shuffle([...o.splits.train]);
      const aug = config.augment ? { shift: 0.1, flip: true, generator: new E.Generator(config.seed * 104729 + epoch) } : undefined;
      const adversarial = pgd ? { attack: pgd, eps: config.adversarial!.eps, generator: new E.Generator(config.seed * 15485863 + epoch) } : undefined;
      progress.startEpoch(epoch, config.epochs, steps);
      const t0 = performance.now();
      const fit = await trainEpoch(model, opt, {
        ds: o.ds, order, batchSize: config.batchSize, channels: config.channels, augment: aug, adversarial, scaler,
        onStep: async (r) => {
          if (!progress.wantsUpdate(r.step, r.steps)) return;
          const [l, c] = Array.from(await r.sums.data());
          progress.step({ epoch, epochs: config.epochs, step: r.step, steps: r.steps, loss: l! / r.seen, acc: c! / r.seen, imagesPerSecond: r.seen / ((performance.now() - t0) / 1000) });
        },
      });
      const seconds = (performance.now() - t0) / 1000;
      if (config.bnRecalibration) recalibrate(model, o.ds, o.splits.train, config);
      const val = await evaluate(model, o.ds, o.splits.val, config.channels);
      const rec: EpochRecord = { epoch, lr: opt.lr, trainLoss: fit.loss, trainAcc: fit.acc, valLoss: val.loss, valAcc: val.acc, seconds, imagesPerSecond: o.splits.train.length / seconds };
      state.history.push(rec);
      state.epoch = epoch;
      state.optimizerStep = opt.step_;
      if (scaler) state.lossScale = scaler.state();
      const improved = config.selectBy === 'last' || val.acc > state.bestValAcc;
      if (improved) { state.bestValAcc = val.acc; state.bestEpoch = epoch; }
      o.checkOwnership?.();
      await saveCheckpoint(o.out, {
        epoch, model: model.stateDict(), optimizer: opt.stateTensors(), optimizerStep: opt.step_, best: improved,
        sidecar: { format: 'medgrad-checkpoint/1', architecture: config.model, modelOptions: { imageSize: config.imageSize, inChannels: config.channels, classes: config.classes, smallInput: config.smallInput }, state },
      });
      progress.endEpoch(`epoch ${epoch}/${config.epochs}  loss ${rec.trainLoss.toFixed(4)} acc ${(100 * rec.trainAcc).toFixed(2)}%  val loss ${val.loss.toFixed(4)} acc ${(100 * val.acc).toFixed(2)}%  ${seconds.toFixed(1)} s (${rec.imagesPerSecond.toFixed(1)} img/s)${state.bestEpoch === epoch ? '  best' : ''}`);
    }
    // A run killed after its last commit may not have refreshed best.safetensors yet.
    o.checkOwnership?.();
    publishBest(o.out);
    const best = loadTensors(bestWeightsFile(o.out));
    try { model.loadStateDict(best); } finally { E.dispose(best); }
    const test = await evaluate(model, o.ds, o.splits.test, config.channels);
    log(`test (best epoch ${state.bestEpoch}): loss ${test.loss.toFixed(4)} accuracy ${(100 * test.acc).toFixed(2)}%`);
    o.checkOwnership?.();
    writeFileAtomic(join(o.out, 'metrics.json'), JSON.stringify({
      config, data: state.data, epochs: state.history, bestEpoch: state.bestEpoch, bestValAcc: state.bestValAcc, test,
      totalSeconds: state.history.reduce((s, e) => s + e.seconds, 0),
      adapter: E.getDevice().info, versions: { node: process.versions.node, medgrad: E.version },
    }, null, 2) + '\n');
    return { state, test };
  } finally {
    opt.dispose(); model.dispose();
  }
}
