// Weight initialisers, seeded through a Generator so a model's initial weights replay exactly.
// Fans follow Keras: a dense [in, out] weight has fan_in = in; a conv weight [Cout, Cin, KH, KW]
// has fan_in = Cin*KH*KW and fan_out = Cout*KH*KW.
import { tensor, type Generator, type Tensor } from '../engine/index.js';

export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 2) return { fanIn: shape[0]!, fanOut: shape[1]! };
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1]! * receptive, fanOut: shape[0]! * receptive };
}

const count = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Glorot (Xavier) uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)); Keras' default. */
export function glorotUniform(shape: readonly number[], gen: Generator): Tensor {
  const { fanIn, fanOut } = fans(shape);
  const l = Math.sqrt(6 / (fanIn + fanOut));
  return tensor(gen.uniform(count(shape), -l, l), shape);
}

/**
 * He normal as Keras draws it: a normal truncated at two standard deviations, scaled so the
 * result has standard deviation sqrt(2 / fan_in) (the 0.8796 corrects for the truncation).
 */
export function heNormal(shape: readonly number[], gen: Generator): Tensor {
  const std = Math.sqrt(2 / fans(shape).fanIn) / 0.8796256610342398;
  const n = count(shape);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    do { v = gen.normal(1)[0]!; } while (Math.abs(v) > 2);
    out[i] = v * std;
  }
  return tensor(out, shape);
}

export const zerosInit = (shape: readonly number[]): Tensor => tensor(new Float32Array(count(shape)), shape);
export const onesInit = (shape: readonly number[]): Tensor => tensor(new Float32Array(count(shape)).fill(1), shape);

export type Initializer = 'glorotUniform' | 'heNormal';
export const INITIALIZERS: Record<Initializer, (shape: readonly number[], gen: Generator) => Tensor> = { glorotUniform, heNormal };
