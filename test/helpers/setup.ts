// Shared test set-up: one Dawn device per test process, seeded data and comparisons.
import { expect } from 'vitest';
import { init, tensor, Tensor } from '../../engine/node.js';
import type { Arr } from './reference.js';

export async function gpu(): Promise<void> { await init(); }

/** A small seeded PRNG for test data (mulberry32), independent of the engine's generator. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  /** Float32-representable values (so the float64 reference sees exactly the GPU's inputs). */
  arr(shape: number[], lo = -2, hi = 2, avoid?: (x: number) => boolean): Arr {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) { let v; do { v = this.uniform(lo, hi); } while (avoid?.(v)); d[i] = v; }
    return { shape, data: Float64Array.from(d) };
  }
}

export const toTensor = (a: Arr, requiresGrad = false): Tensor => tensor(Float32Array.from(a.data), a.shape, { requiresGrad });

/** Asserts |actual - expected| <= atol + rtol * |expected| elementwise, shapes equal. */
export function expectClose(actual: ArrayLike<number>, actualShape: readonly number[], expected: Arr, tol: { atol: number; rtol: number }, what: string): void {
  expect([...actualShape], `${what}: shape`).toEqual(expected.shape);
  let worst = 0, at = -1;
  for (let i = 0; i < expected.data.length; i++) {
    const e = expected.data[i]!, a = actual[i]!;
    const err = Math.abs(a - e) - (tol.atol + tol.rtol * Math.abs(e));
    const bad = Number.isNaN(e) !== Number.isNaN(a) || (!Number.isNaN(e) && !(err <= 0) && !(a === e));
    if (bad && (at < 0 || err > worst)) { worst = err; at = i; }
  }
  if (at >= 0) expect.fail(`${what}: element ${at} is ${actual[at]} but the float64 reference gives ${expected.data[at]} (atol ${tol.atol}, rtol ${tol.rtol})`);
}
