// One driver per implementation: the few operations the workloads need, each returning an
// opaque handle. Workloads are written once against this interface, so every implementation
// runs exactly the same work with the same synchronisation.
import * as E from '../engine/node.js';
import { loadJax, loadTfjs } from './peers.js';

export interface Driver<H = unknown> {
  impl: string;
  randn(shape: number[], seed: number): Promise<H>;
  matmul(a: H, b: H): H;
  add(a: H, b: H): H;
  /** Resolves when the GPU has finished the work that produced h. */
  sync(h: H): Promise<void>;
  dispose(h: H): void;
}

const medgrad: Driver<E.Tensor> = {
  impl: 'medgrad',
  randn: async (shape, seed) => E.randn(shape, { generator: new E.Generator(seed) }),
  matmul: (a, b) => E.matmul(a, b),
  add: (a, b) => E.add(a, b),
  sync: () => E.sync(),
  dispose: (h) => h.dispose(),
};

async function tfjs(): Promise<Driver | null> {
  const tf = await loadTfjs();
  if (!tf) return null;
  type T = import('@tensorflow/tfjs').Tensor;
  return {
    impl: 'tfjs-webgpu',
    randn: async (shape, seed) => tf.randomNormal(shape, 0, 1, 'float32', seed),
    matmul: (a, b) => tf.matMul(a as import('@tensorflow/tfjs').Tensor2D, b as import('@tensorflow/tfjs').Tensor2D),
    add: (a, b) => tf.add(a as T, b as T),
    // TensorFlow.js has no public "wait for the GPU": read back one element of the result.
    sync: async (h) => { const one = tf.slice(tf.reshape(h as T, [-1]), 0, 1); await one.data(); one.dispose(); },
    dispose: (h) => (h as T).dispose(),
  };
}

async function jaxjs(): Promise<Driver | null> {
  const jax = await loadJax();
  if (!jax) return null;
  type A = import('@jax-js/jax').Array;
  // jax-js arrays are consumed by ops (move semantics): `.ref` keeps an operand alive.
  return {
    impl: 'jax-js',
    randn: async (shape, seed) => jax.blockUntilReady(jax.random.normal(jax.random.key(seed), shape)),
    matmul: (a, b) => jax.numpy.matmul((a as A).ref, (b as A).ref),
    add: (a, b) => jax.numpy.add((a as A).ref, (b as A).ref),
    sync: async (h) => { await (h as A).ref.blockUntilReady().then((x) => x.dispose()); },
    dispose: (h) => (h as A).dispose(),
  };
}

export const IMPLS = ['medgrad', 'tfjs-webgpu', 'jax-js'] as const;
export type Impl = (typeof IMPLS)[number];

export async function driverFor(impl: Impl): Promise<Driver | null> {
  if (impl === 'medgrad') return medgrad as Driver;
  return impl === 'tfjs-webgpu' ? tfjs() : jaxjs();
}
