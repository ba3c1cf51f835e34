// Shared by the float16 kernel tests: float16 inputs (values already rounded to float16, so the
// float64 reference sees exactly what the GPU reads), forcing variants, and the tolerance.
import { expect } from 'vitest';
import * as E from '../../engine/node.js';
import type { Choice, KernelDef } from '../../engine/kernels/variants.js';
import type * as R from '../../engine/reference/float64.js';
import { halfArr } from '../../engine/reference/half.js';
import { expectClose, type Rng } from './setup.js';

/**
 * One float16 ulp relative (2^-10): the output's rounding to float16 (half an ulp with ties to
 * even; WGSL lets the f32 -> f16 conversion round either way, so up to one), after f32 arithmetic.
 */
export const HALF_TOL = { atol: 1e-6, rtol: 2 ** -10 };

/** Kernels forced by the current test, for afterEach to release. */
export const forcedKernels: string[] = [];
export function releaseForced(): void { for (const k of forcedKernels.splice(0)) E.getEngine().policy.force(k, null); }

/** Forces `variant` of `k`, after checking the policy can run it for the float16 `shape` (else the force would silently fall back). */
export function force<S, V extends Choice<S>>(k: KernelDef<S, V>, variant: string, shape: S): void {
  const policy = E.getEngine().policy;
  expect(policy.candidates(k, shape).map((v) => v.name), `${k.name} runs ${variant} on float16 for ${JSON.stringify(shape)}`).toContain(variant);
  forceName(k.name, variant);
}
export function forceName(kernel: string, variant: string): void {
  E.getEngine().policy.force(kernel, variant);
  forcedKernels.push(kernel);
}

/** Random values already rounded to float16, and their float16 tensor. */
export function half(r: Rng, shape: number[], lo = -2, hi = 2): [R.Arr, E.Tensor] {
  const a = halfArr(r.arr(shape, lo, hi));
  return [a, E.tensor(Float32Array.from(a.data), shape, { dtype: 'float16' })];
}

/** A float16 result against the float64 reference. */
export async function check(t: E.Tensor, ref: R.Arr, tol: { atol: number; rtol: number }, what: string): Promise<void> {
  expect(t.dtype, what).toBe('float16');
  expectClose(await t.data(), t.shape, ref, tol, what);
}
