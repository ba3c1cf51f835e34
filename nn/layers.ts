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

/** Batch norm over channels; running statistics are buffers, updated in training mode. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(readonly numFeatures: number, readonly options: { momentum?: number; eps?: number } = {}) {
    super();
    this.weight = this.registerParameter('weight', onesInit([numFeatures]));
    this.bias = this.registerParameter('bias', zerosInit([numFeatures]));
    this.runningMean = this.registerBuffer('running_mean', zerosInit([numFeatures]));
    this.runningVar = this.registerBuffer('running_var', onesInit([numFeatures]));
  }
  forward(x: Tensor): Tensor {
    return E.batchNorm2d(x, this.weight, this.bias, this.runningMean, this.runningVar, { training: this.training, ...this.options });
  }

  /** relu(this(x) + residual) as one fused op (residual optional): what a ResNet layer ends with. */
  forwardRelu(x: Tensor, residual: Tensor | null = null): Tensor {
    return E.batchNormRelu2d(x, this.weight, this.bias, this.runningMean, this.runningVar, residual, { training: this.training, ...this.options });
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
