// Shared test set-up: one Dawn device per test process, seeded data and comparisons.
import { expect } from 'vitest';
import { init, tensor, Tensor } from '../../engine/node.js';
import type { Arr } from '../../engine/reference/float64.js';
export { Rng } from '../../engine/reference/check.js';

export async function gpu(): Promise<void> { await init(); }

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
