// One driver per implementation: the few operations the workloads need, each returning an
// opaque handle. Workloads are written once against this interface, so every implementation
// runs exactly the same work with the same synchronisation.
import * as E from '../engine/node.js';
import { MATMUL } from '../engine/ops/linalg.js';
import { preferSubgroupMatrix, SM_VARIANT } from '../engine/ops/matmul-subgroup-matrix.js';
import { loadJax, loadTfjs } from './peers.js';

/** A convolution as the workloads describe it: NCHW input, [Cout, Cin, KH, KW] weights. */
export interface ConvSpec { x: number[]; w: number[]; stride: number; padding: 'same' | 'valid' }

export interface Driver<H = unknown> {
  impl: string;
  randn(shape: number[], seed: number): Promise<H>;
  matmul(a: H, b: H): H;
  add(a: H, b: H): H;
  /** Inputs in the library's own layout for a ConvSpec (NHWC for TensorFlow.js). */
  convInputs(c: ConvSpec): Promise<H[]>;
  conv(c: ConvSpec, x: H, w: H): H;
  /** A training step's convolution work: y = conv(x, w), then dx and dw for the cotangent dy; returns [y, dx, dw]. */
  convGrads(c: ConvSpec, x: H, w: H, dy: H): H[];
  /** Resolves when the GPU has finished the work that produced h. */
  sync(h: H): Promise<void>;
  dispose(h: H): void;
  /**
   * medgrad only: a 2-D matmul on the tensor cores (`tensorCores`, the table rule's tile) or on
   * the float32 kernel the table rule picks without them (a tune cache is not consulted); null
   * where the adapter has none.
   */
  tensorCoreMatmul?(): ((a: H, b: H, tensorCores: boolean) => H) | null;
}

function tensorCoreMatmul(): ((a: E.Tensor, b: E.Tensor, tensorCores: boolean) => E.Tensor) | null {
  // The A/B run with lavapipe's defaults (bench/gpu.sh) measures today's kernels only.
  if (process.env.MEDGRAD_GPU_DEFAULTS === '0') return null;
  const policy = E.getEngine().policy;
  const product = (M: number, N: number, K: number) => ({ M, N, K, batch: 1, bRowContiguous: true });
  // Tensor cores are offered under 'medium' precision only (setFloat32MatmulPrecision): set it
  // around these rows alone, so that every other matmul row stays float32.
  const medium = <T>(fn: () => T): T => {
    const was = E.getFloat32MatmulPrecision();
    E.setFloat32MatmulPrecision('medium');
    try { return fn(); } finally { E.setFloat32MatmulPrecision(was); }
  };
  if (!medium(() => policy.candidates(MATMUL, product(1024, 1024, 1024)).some((v) => v.name === SM_VARIANT))) return null;
  return (a, b, tensorCores) => medium(() => {
    const s = product(a.shape[0]!, b.shape[1]!, a.shape[1]!);
    const all = policy.candidates(MATMUL, s), f32 = all.filter((v) => !v.name.startsWith('subgroup-matrix'));
    // The table rule's tile for the size (or the large one where the rule would not take tensor cores).
    policy.force('matmul', tensorCores ? preferSubgroupMatrix(s, all, policy.caps)?.name ?? SM_VARIANT : MATMUL.prefer!(s, f32, policy.caps).name);
    try { return E.matmul(a, b); } finally { policy.force('matmul', null); }
  });
}

const medgrad: Driver<E.Tensor> = {
  impl: 'medgrad',
  randn: async (shape, seed) => E.randn(shape, { generator: new E.Generator(seed) }),
  matmul: (a, b) => E.matmul(a, b),
  add: (a, b) => E.add(a, b),
  tensorCoreMatmul,
  sync: () => E.sync(),
  dispose: (h) => h.dispose(),
  convInputs: async (c) => {
    const x = E.randn(c.x, { generator: new E.Generator(1) }), w = E.randn(c.w, { generator: new E.Generator(2), std: 0.1 });
    return [x, w, E.randn(E.conv2d(x, w, undefined, c).shape, { generator: new E.Generator(3) })];
  },
  conv: (c, x, w) => E.conv2d(x, w, undefined, c),
  convGrads: (c, x, w, dy) => E.tidy(() => {
    x.requiresGrad = true; w.requiresGrad = true;
    const y = E.conv2d(x, w, undefined, c);
    const out = [y, ...E.grad(y, [x, w], dy)];
    x.requiresGrad = false; w.requiresGrad = false;
    return out;
  }),
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
    convInputs: async (c) => {
      // TensorFlow.js convolves NHWC inputs with [KH, KW, Cin, Cout] filters.
      const [n, ci, hh, ww] = c.x as [number, number, number, number];
      const [co, , kh, kw] = c.w as [number, number, number, number];
      const x = tf.randomNormal([n, hh, ww, ci], 0, 1, 'float32', 1), w = tf.randomNormal([kh, kw, ci, co], 0, 0.1, 'float32', 2);
      const y = tf.conv2d(x as import('@tensorflow/tfjs').Tensor4D, w as import('@tensorflow/tfjs').Tensor4D, c.stride, c.padding);
      const dy = tf.randomNormal(y.shape, 0, 1, 'float32', 3);
      y.dispose();
      return [x, w, dy];
    },
    conv: (c, x, w) => tf.conv2d(x as import('@tensorflow/tfjs').Tensor4D, w as import('@tensorflow/tfjs').Tensor4D, c.stride, c.padding),
    convGrads: (c, x, w, dy) => {
      // valueAndGrads needs a scalar: sum(y * dy) has gradients exactly dy's cotangent of y.
      let y: T | null = null;
      const { grads } = tf.valueAndGrads((a: T, b: T) => {
        y = tf.conv2d(a as import('@tensorflow/tfjs').Tensor4D, b as import('@tensorflow/tfjs').Tensor4D, c.stride, c.padding);
        return tf.sum(tf.mul(y, dy as T));
      })([x as T, w as T]);
      return [tf.keep(y!), ...grads];
    },
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
    convInputs: async (c) => {
      const x = await jax.blockUntilReady(jax.random.normal(jax.random.key(1), c.x));
      const w = await jax.blockUntilReady(jax.numpy.multiply(jax.random.normal(jax.random.key(2), c.w), 0.1));
      const y = jax.lax.conv(x.ref, w.ref, [c.stride, c.stride], c.padding === 'same' ? 'SAME' : 'VALID');
      const dy = await jax.blockUntilReady(jax.random.normal(jax.random.key(3), y.shape));
      y.dispose();
      return [x, w, dy];
    },
    conv: (c, x, w) => jax.lax.conv((x as A).ref, (w as A).ref, [c.stride, c.stride], c.padding === 'same' ? 'SAME' : 'VALID'),
    convGrads: (c, x, w, dy) => {
      const f = (a: A, b: A) => jax.lax.conv(a, b, [c.stride, c.stride], c.padding === 'same' ? 'SAME' : 'VALID');
      const [y, back] = jax.vjp(f, [(x as A).ref, (w as A).ref]);
      const [dx, dw] = back((dy as A).ref) as A[];
      back.dispose();
      return [y, dx!, dw!];
    },
  };
}

/** Implementations the runner knows; pytorch-cpu runs through Python, not a Driver. */
export const IMPLS = ['medgrad', 'tfjs-webgpu', 'jax-js', 'pytorch-cpu'] as const;
export type Impl = (typeof IMPLS)[number];

export async function driverFor(impl: Exclude<Impl, 'pytorch-cpu'>): Promise<Driver | null> {
  if (impl === 'medgrad') return medgrad as Driver;
  return impl === 'tfjs-webgpu' ? tfjs() : jaxjs();
}
