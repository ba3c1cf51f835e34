// The study's models, exactly as ../shared/docs/protocol.md defines them (Keras semantics):
// CBR-LargeT and the Keras "ResNet v1 for CIFAR" of depth 6n+2 (ResNet-8/20/32/50).
// State-dict names follow PyTorch conventions (conv1.weight, bn1.running_mean, fc.weight).
import * as E from '../engine/index.js';
import { Generator, type Tensor } from '../engine/index.js';
import { Module } from './module.js';
import { BatchNorm2d, Conv2d, Linear, Sequential } from './layers.js';

export interface ModelOptions {
  inChannels?: number;
  classes?: number;
  /** Seeds the initial weights (default 0). */
  seed?: number;
  /** Batch-norm momentum (weight of the new batch) and epsilon; Keras' defaults unless set. */
  bnMomentum?: number;
  bnEps?: number;
  /**
   * In eval mode, run each conv-BN(-ReLU) layer (and a ResNet block's tail, residual included) as
   * one convolution with the batch norm folded in as a per-channel scale and shift of its outputs (E.convBatchNorm2d); default true.
   * false runs the separate ops, as training does (for comparisons). Training is unaffected.
   */
  foldBatchNorm?: boolean;
}

const bnOptions = (o: ModelOptions) => ({ momentum: o.bnMomentum ?? E.KERAS_BATCHNORM.momentum, eps: o.bnEps ?? E.KERAS_BATCHNORM.eps });

/** conv -> batch norm -> optional ReLU, Keras' resnet_layer / CBR block. */
export class ConvBN extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  /** In eval mode, one folded convolution instead of conv + batch norm (ModelOptions.foldBatchNorm). */
  fold: boolean;
  constructor(cin: number, cout: number, k: number, opts: E.Conv2dOptions, o: ModelOptions, gen: Generator,
    init: 'heNormal' | 'glorotUniform', readonly activate = true) {
    super();
    this.conv = this.registerModule('conv', new Conv2d(cin, cout, k, { ...opts, generator: gen, init }));
    this.bn = this.registerModule('bn', new BatchNorm2d(cout, bnOptions(o)));
    this.fold = o.foldBatchNorm ?? true;
  }
  /** With `residual`, relu(bn(conv(x)) + residual): a basic block's tail. BN, residual and ReLU run fused. */
  forward(x: Tensor, residual: Tensor | null = null): Tensor {
    const relu = this.activate || residual !== null;
    // Float32 only (mixed precision trains in float16 and evaluates in float32).
    if (!this.training && this.fold && x.dtype === 'float32') {
      const { conv, bn } = this;
      return E.convBatchNorm2d(x, conv.weight, conv.bias, bn.weight, bn.bias, bn.runningMean, bn.runningVar, residual,
        { stride: conv.options.stride, padding: conv.options.padding, eps: bn.options.eps, relu });
    }
    const z = this.conv.forward(x);
    return relu ? this.bn.forwardRelu(z, residual) : this.bn.forward(z);
  }
}

/** Sets ConvBN.fold on every conv-BN layer of a model (see ModelOptions.foldBatchNorm). */
export function setFoldBatchNorm(model: Module, on: boolean): void {
  if (model instanceof ConvBN) model.fold = on;
  for (const [, m] of model.namedChildren()) setFoldBatchNorm(m, on);
}

export interface CbrOptions extends ModelOptions {
  /**
   * 'valid' is the paper's network, which needs inputs of at least 217 px. 'same' is this
   * project's small-input variant: the same layers and parameter count, with 'same' padding
   * in the convolutions and poolings, so inputs of any size work.
   */
  padding?: 'valid' | 'same';
}

/** CBR-LargeT: five 7x7 conv-BN-ReLU blocks (32..512 filters), 3x3/2 max pools, GAP, dense. */
export class CbrLargeT extends Module {
  readonly features: Sequential;
  readonly fc: Linear;
  readonly padding: 'valid' | 'same';
  constructor(o: CbrOptions = {}) {
    super();
    const gen = new Generator(o.seed ?? 0);
    this.padding = o.padding ?? 'valid';
    const widths = [32, 64, 128, 256, 512];
    const blocks: Module[] = widths.map((f, i) => new ConvBN(i === 0 ? o.inChannels ?? 3 : widths[i - 1]!, f, 7, { padding: this.padding }, o, gen, 'glorotUniform'));
    this.features = this.registerModule('features', new Sequential(...blocks));
    this.fc = this.registerModule('fc', new Linear(512, o.classes ?? 2, { generator: gen }));
  }
  /** Smallest input side this configuration accepts. */
  get minInput(): number { return this.padding === 'valid' ? 217 : 1; }
  forward(x: Tensor): Tensor { return this.fc.forward(this.features512(x)); }
  /** The 512 globally pooled features before the classifier (t-SNE, margins). */
  features512(x: Tensor): Tensor {
    if (x.rank !== 4 || x.shape[2]! < this.minInput || x.shape[3]! < this.minInput) {
      throw new Error(`medgrad: CBR-LargeT (${this.padding} padding) needs NCHW input of at least ${this.minInput}x${this.minInput}, got ${E.formatShape(x.shape)}${this.padding === 'valid' ? "; for smaller images use the small-input variant (padding: 'same')" : ''}`);
    }
    let h = x;
    this.features.layers.forEach((block, i) => {
      h = block.forward(h);
      if (i < 4) h = E.maxPool2d(h, 3, { stride: 2, padding: this.padding });
    });
    return E.globalAvgPool2d(h);
  }
}

/** Keras ResNet v1 basic block: conv-BN-ReLU, conv-BN, + shortcut (1x1 stride-2 conv, no BN, when downsampling), ReLU. */
class BasicBlock extends Module {
  readonly conv1: ConvBN;
  readonly conv2: ConvBN;
  readonly shortcut: Conv2d | null;
  constructor(cin: number, cout: number, stride: number, o: ModelOptions, gen: Generator) {
    super();
    this.conv1 = this.registerModule('conv1', new ConvBN(cin, cout, 3, { stride, padding: 'same' }, o, gen, 'heNormal'));
    this.conv2 = this.registerModule('conv2', new ConvBN(cout, cout, 3, { padding: 'same' }, o, gen, 'heNormal', false));
    this.shortcut = stride !== 1 || cin !== cout
      ? this.registerModule('shortcut', new Conv2d(cin, cout, 1, { stride, padding: 'same', generator: gen, init: 'heNormal' }))
      : null;
  }
  forward(x: Tensor): Tensor {
    return this.conv2.forward(this.conv1.forward(x), this.shortcut ? this.shortcut.forward(x) : x);
  }
}

export interface ResNetOptions extends ModelOptions {
  /**
   * The head's average pooling: 8 (the protocol's, inputs of at least 32 px) or 'global' (this
   * project's small-input variant, e.g. for 28 px images, where 8x8 does not fit).
   */
  pool?: 8 | 'global';
}

/** Keras "ResNet v1 for CIFAR", depth 6n+2: stem, three stages of n basic blocks (16/32/64), pool, dense. */
export class ResNet extends Module {
  readonly stem: ConvBN;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  fc: Linear | null = null;
  readonly pool: 8 | 'global';
  private readonly gen: Generator;
  constructor(readonly depth: number, readonly options: ResNetOptions = {}) {
    super();
    if ((depth - 2) % 6 !== 0 || depth < 8) throw new Error(`medgrad: ResNet depth must be 6n+2 (8, 20, 32, 50, ...), got ${depth}`);
    const n = (depth - 2) / 6;
    this.gen = new Generator(options.seed ?? 0);
    this.pool = options.pool ?? 8;
    this.stem = this.registerModule('stem', new ConvBN(options.inChannels ?? 3, 16, 3, { padding: 'same' }, options, this.gen, 'heNormal'));
    const stage = (cin: number, cout: number, stride: number) =>
      new Sequential(...Array.from({ length: n }, (_, i) => new BasicBlock(i === 0 ? cin : cout, cout, i === 0 ? stride : 1, options, this.gen)));
    this.layer1 = this.registerModule('layer1', stage(16, 16, 1));
    this.layer2 = this.registerModule('layer2', stage(16, 32, 2));
    this.layer3 = this.registerModule('layer3', stage(32, 64, 2));
  }

  /** The classifier's input size depends on the image size (64 * (H/4/8) * (W/4/8) with pool 8). */
  build(imageSize: number): this {
    const side = Math.ceil(Math.ceil(imageSize / 2) / 2);
    if (this.pool === 8 && side < 8) {
      throw new Error(`medgrad: ResNet-${this.depth} with the protocol's 8x8 average pooling needs images of at least 32 px, got ${imageSize}; use pool: 'global' for small images`);
    }
    const features = this.pool === 8 ? 64 * Math.floor(side / 8) ** 2 : 64;
    if (this.fc) {
      if (this.fc.inFeatures === features) return this;
      throw new Error(`medgrad: ResNet-${this.depth} was built for ${this.fc.inFeatures} features, not ${features} (image size ${imageSize})`);
    }
    this.fc = this.registerModule('fc', new Linear(features, this.options.classes ?? 2, { generator: this.gen, init: 'heNormal' }));
    return this;
  }

  /** The flattened features before the classifier (3,136 at 224 px with pool 8). */
  features(x: Tensor): Tensor {
    const h = this.layer3.forward(this.layer2.forward(this.layer1.forward(this.stem.forward(x))));
    return this.pool === 8 ? E.flatten(E.avgPool2d(h, 8), 1) : E.globalAvgPool2d(h);
  }

  forward(x: Tensor): Tensor {
    if (x.rank !== 4) throw new Error(`medgrad: ResNet-${this.depth}: input must be NCHW, got ${E.formatShape(x.shape)}`);
    this.build(x.shape[2]!);
    return this.fc!.forward(this.features(x));
  }
}

export type ModelName = 'cbr-larget' | 'resnet8' | 'resnet20' | 'resnet32' | 'resnet50';
export const MODEL_NAMES: ModelName[] = ['cbr-larget', 'resnet8', 'resnet20', 'resnet32', 'resnet50'];

export interface BuildOptions extends ModelOptions {
  imageSize: number;
  /** Small-input variants, chosen explicitly: CBR-LargeT 'same' padding, ResNet global pooling. */
  smallInput?: boolean;
}

/** A study model by name, built for an image size (so its parameters exist before training). */
export function createModel(name: ModelName, o: BuildOptions): CbrLargeT | ResNet {
  if (name === 'cbr-larget') return new CbrLargeT({ ...o, padding: o.smallInput ? 'same' : 'valid' });
  const depth = Number(name.slice('resnet'.length));
  if (![8, 20, 32, 50].includes(depth)) throw new Error(`medgrad: unknown model '${name}' (have ${MODEL_NAMES.join(', ')})`);
  return new ResNet(depth, { ...o, pool: o.smallInput ? 'global' : 8 }).build(o.imageSize);
}
