// Layers. Each holds its parameters and calls one engine op; names match PyTorch's.
import * as E from '../engine/index.js';
import type { Generator, Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { INITIALIZERS, onesInit, zerosInit, type Initializer } from './init.js';

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
  forward(x: Tensor): Tensor {
    return E.conv2d(x, this.weight, this.bias ?? undefined, { stride: this.options.stride, padding: this.options.padding });
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
  forward(x: Tensor): Tensor { return E.add(E.matmul(x, E.transpose(this.weight)), this.bias); }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor { return E.relu(x); }
}

export class MaxPool2d extends Module {
  constructor(readonly kernelSize: number, readonly options: E.Pool2dOptions = {}) { super(); }
  forward(x: Tensor): Tensor { return E.maxPool2d(x, this.kernelSize, this.options); }
}

export class AvgPool2d extends Module {
  constructor(readonly kernelSize: number, readonly options: E.Pool2dOptions = {}) { super(); }
  forward(x: Tensor): Tensor { return E.avgPool2d(x, this.kernelSize, this.options); }
}

export class GlobalAvgPool2d extends Module {
  forward(x: Tensor): Tensor { return E.globalAvgPool2d(x); }
}

export class Flatten extends Module {
  forward(x: Tensor): Tensor { return E.flatten(x, 1); }
}

export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers.map((m, i) => this.registerModule(String(i), m));
  }
  forward(x: Tensor): Tensor { return this.layers.reduce((h, m) => m.forward(h), x); }
}

/** out = relu(main(x) + shortcut(x)); the shortcut is the identity unless given. */
export class Residual extends Module {
  readonly main: Module;
  readonly shortcut: Module | null;
  constructor(main: Module, shortcut: Module | null = null) {
    super();
    this.main = this.registerModule('main', main);
    this.shortcut = shortcut ? this.registerModule('shortcut', shortcut) : null;
  }
  forward(x: Tensor): Tensor { return E.relu(E.add(this.main.forward(x), this.shortcut ? this.shortcut.forward(x) : x)); }
}
