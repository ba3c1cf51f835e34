// A linear classifier on flattened images, whose input gradient has a closed form: the model
// of the attack tests' float64 re-implementations.
import * as E from '../../engine/node.js';
import { Module } from '../../nn/module.js';
import { Linear } from '../../nn/layers.js';

export class LinearClassifier extends Module {
  readonly fc: Linear;
  constructor(d: number, k: number, seed: number) {
    super();
    this.fc = this.registerModule('fc', new Linear(d, k, { generator: new E.Generator(seed) }));
  }
  forward(x: E.Tensor): E.Tensor { return this.fc.forward(E.flatten(x, 1)); }
}
