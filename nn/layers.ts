// Layers. Each holds its parameters and calls one engine op; names match PyTorch's.
import * as E from '../engine/index.js';
import type { Generator, Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { INITIALIZERS, onesInit, zerosInit, type Initializer } from './init.js';
import { asActivation } from './amp.js';

export interface InitOptions { generator: Generator; init?: Initializer }

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    readonly options: E.Conv2dOptions & InitOptions & { bias?: boolean }) {
    super();
    const init = INITIALIZERS[options.init ?? 'glorotUniform'];
    this.weight = this.registerParameter('weight', init([outChannels, inChannels, kernelSize, kernelSize], options.generator));
    this.bias = options.bias === false ? null : this.registerParameter('bias', zerosInit([outChannels]));
  }
  /** On float16 input (mixed precision) the float32 weights are cast to float16 for the convolution. */
  forward(x: Tensor): Tensor {
    return E.conv2d(x, asActivation(this.weight, x), this.bias ? asActivation(this.bias, x) : undefined, { stride: this.options.stride, padding: this.options.padding });
  }
}

/**
 * Batch norm over channels; running statistics are buffers, updated in training mode. As in
 * PyTorch, `momentum` is the new batch's weight (Keras' 0.99 is 0.01), and null makes the running
 * statistics the plain average of the batches since resetRunningStats() (what updateBn uses).
 */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  momentum: number | null;
  /** Training-mode batches seen since construction or resetRunningStats(). */
  numBatchesTracked = 0;
  constructor(readonly numFeatures: number, readonly options: { momentum?: number; eps?: number } = {}) {
    super();
    this.weight = this.registerParameter('weight', onesInit([numFeatures]));
    this.bias = this.registerParameter('bias', zerosInit([numFeatures]));
    this.runningMean = this.registerBuffer('running_mean', zerosInit([numFeatures]));
    this.runningVar = this.registerBuffer('running_var', onesInit([numFeatures]));
    this.momentum = options.momentum ?? 0.1;
  }
  forward(x: Tensor): Tensor {
    return E.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, this.opOptions());
  }

  /** relu(this(x) + residual) as one fused op (residual optional): what a ResNet layer ends with. */
  forwardRelu(x: Tensor, residual: Tensor | null = null): Tensor {
    return E.batchNormRelu2d(x, this.weight, this.bias, this.runningMean, this.runningVar, residual, this.opOptions());
  }

  /** Running mean 0 and variance 1, no batches counted (PyTorch's reset_running_stats). */
  resetRunningStats(): void {
    E.noGrad(() => { this.runningMean.assign(E.zeros([this.numFeatures])); this.runningVar.assign(E.ones([this.numFeatures])); });
    this.numBatchesTracked = 0;
  }

  private opOptions(): E.BatchNormOptions {
    if (this.training) this.numBatchesTracked++;
    return { training: this.training, eps: this.options.eps, momentum: this.momentum ?? 1 / Math.max(1, this.numBatchesTracked) };
  }
}

/** y = x W^T + b with W stored [out, in] as in PyTorch. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(readonly inFeatures: number, readonly outFeatures: number, options: InitOptions) {
    super();
    // Initialisers see Keras' [in, out] fans; the stored weight is the transpose.
    const w = INITIALIZERS[options.init ?? 'glorotUniform']([inFeatures, outFeatures], options.generator);
    this.weight = this.registerParameter('weight', E.tidy(() => E.transpose(w)));
    w.dispose();
    this.bias = this.registerParameter('bias', zerosInit([outFeatures]));
  }
  /** float16 input (mixed precision) is widened: the classifier head runs in float32. */
  forward(x: Tensor): Tensor { return E.add(E.matmul(x.dtype === 'float16' ? E.cast(x, 'float32') : x, E.transpose(this.weight)), this.bias); }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor { return this.layers.reduce((h, m) => m.forward(h), x); }
}
