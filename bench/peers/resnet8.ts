// ResNet-8 (Keras "ResNet v1 for CIFAR", n = 1) written in each peer library the way its users
// would write it, for the training-throughput comparison: one step is forward, backward and
// Adam on a batch, and ends when the library has finished it. Same architecture as medgrad's:
// conv3x3(16)-BN-ReLU stem; blocks 16 (stride 1), 32 and 64 (stride 2, 1x1 projection);
// 8x8 average pooling; dense(2); 'same' padding that pads bottom/right on stride 2.
import type { Jax, Tf } from '../peers.js';
import type { Workload } from '../harness.js';
import { createModel } from '../../nn/models.js';

/** The peer must build exactly medgrad's network: compare parameter counts (Keras' total, or trainable). */
function checkCount(impl: string, size: number, got: number, kind: 'total' | 'trainable'): void {
  const m = createModel('resnet8', { imageSize: size });
  const want = m.parameterCount()[kind];
  m.dispose();
  if (got !== want) throw new Error(`bench: ${impl} ResNet-8 has ${got} ${kind} parameters, medgrad's ${want}: not the same network`);
}

export function tfjsResnet8Step(tf: Tf, size: number, batch: number, name: string): Workload {
  // TensorFlow.js users build this with the Layers API (channels last) and train with trainOnBatch.
  let model: import('@tensorflow/tfjs').LayersModel, x: import('@tensorflow/tfjs').Tensor, y: import('@tensorflow/tfjs').Tensor;
  type SymT = import('@tensorflow/tfjs').SymbolicTensor;
  const convBn = (h: SymT, filters: number, stride: number, relu: boolean): SymT => {
    let o = tf.layers.conv2d({ filters, kernelSize: 3, strides: stride, padding: 'same', kernelInitializer: 'heNormal' }).apply(h) as SymT;
    o = tf.layers.batchNormalization().apply(o) as SymT;
    return relu ? (tf.layers.reLU().apply(o) as SymT) : o;
  };
  const block = (h: SymT, filters: number, stride: number): SymT => {
    const r = convBn(convBn(h, filters, stride, true), filters, 1, false);
    const s = stride !== 1 ? (tf.layers.conv2d({ filters, kernelSize: 1, strides: stride, padding: 'same', kernelInitializer: 'heNormal' }).apply(h) as SymT) : h;
    return tf.layers.reLU().apply(tf.layers.add().apply([r, s]) as SymT) as SymT;
  };
  return {
    name, unit: 'images/s', work: batch, impl: 'tfjs-webgpu',
    setup: () => {
      const input = tf.input({ shape: [size, size, 3] });
      let h = block(block(block(convBn(input, 16, 1, true), 16, 1), 32, 2), 64, 2);
      h = tf.layers.flatten().apply(tf.layers.averagePooling2d({ poolSize: 8 }).apply(h)) as SymT;
      const out = tf.layers.dense({ units: 2, activation: 'softmax' }).apply(h) as SymT;
      model = tf.model({ inputs: input, outputs: out });
      checkCount('tfjs-webgpu', size, model.countParams(), 'total');
      model.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy' });
      x = tf.randomUniform([batch, size, size, 3], 0, 1, 'float32', 2);
      y = tf.cast(tf.randomUniform([batch], 0, 2, 'float32', 3).floor(), 'float32');
    },
    // trainOnBatch resolves with the loss, read back from the GPU: the step has finished.
    run: async () => { await model.trainOnBatch(x, y); },
    teardown: () => { model.dispose(); x.dispose(); y.dispose(); },
  };
}

export function jaxResnet8Step(jax: Jax, size: number, batch: number, name: string): Workload {
  // jax-js users write the model as a function of a parameter list and jit the whole step.
  type A = import('@jax-js/jax').Array;
  const np = jax.numpy;
  const key = (i: number) => jax.random.key(i);
  const convShapes: Array<[number, number, number]> = []; // [cout, cin, k] in order of use
  const plan = { blocks: [[16, 16, 1], [16, 32, 2], [32, 64, 2]] as Array<[number, number, number]> };
  convShapes.push([16, 3, 3]);
  for (const [cin, cout, s] of plan.blocks) { convShapes.push([cout, cin, 3], [cout, cout, 3]); if (s !== 1) convShapes.push([cout, cin, 1]); }
  const features = 64 * (Math.ceil(Math.ceil(size / 2) / 2) / 8) ** 2;
  let params: A[] = [], m: A[] = [], v: A[] = [], x: A, y: A, t = 0;
  let step: (p: A[], m: A[], v: A[], lr: A, x: A, y: A) => [A, A[], A[], A[]];

  /** Parameters in order: per conv [w, b] (+ [gamma, beta] when followed by BN), then dense [w, b]. */
  function forward(p: A[], xin: A): A {
    let k = 0;
    const next = () => p[k++]!;
    const conv = (h: A, stride: number): A => {
      const w = next(), b = next();
      return np.add(jax.lax.conv(h, w, [stride, stride], 'SAME'), np.reshape(b, [1, -1, 1, 1]));
    };
    const bn = (h: A): A => {
      const g = next(), be = next();
      const mean = np.mean(h.ref, [0, 2, 3], { keepdims: true });
      const c = np.subtract(h, mean);
      const varc = np.mean(np.square(c.ref), [0, 2, 3], { keepdims: true });
      return np.add(np.multiply(np.divide(c, np.sqrt(np.add(varc, 1e-3))), np.reshape(g, [1, -1, 1, 1])), np.reshape(be, [1, -1, 1, 1]));
    };
    let h = jax.nn.relu(bn(conv(xin, 1)));
    for (const [, , s] of plan.blocks) {
      const r = bn(conv(jax.nn.relu(bn(conv(h.ref, s))), 1));
      const sc = s !== 1 ? conv(h, s) : h;
      h = jax.nn.relu(np.add(r, sc));
    }
    const [n, c, hh] = h.shape as [number, number, number, number];
    const pooled = np.mean(np.reshape(h, [n, c, hh / 8, 8, hh / 8, 8]), [3, 5]);
    const w = next(), b = next();
    return np.add(np.matmul(np.reshape(pooled, [n, -1]), w), b);
  }

  return {
    name, unit: 'images/s', work: batch, impl: 'jax-js',
    setup: async () => {
      let seed = 10;
      const he = (shape: number[], fanIn: number) => np.multiply(jax.random.normal(key(seed++), shape), Math.sqrt(2 / fanIn));
      for (const [co, ci, k] of convShapes) {
        params.push(he([co, ci, k, k], ci * k * k), np.zeros([co]));
        // Every conv but the 1x1 shortcut projections is followed by BN.
        if (k !== 1) params.push(np.ones([co]), np.zeros([co]));
      }
      params.push(he([features, 2], features), np.zeros([2]));
      checkCount('jax-js', size, params.reduce((a, p) => a + p.size, 0), 'trainable');
      m = params.map((p) => np.zeros(p.shape));
      v = params.map((p) => np.zeros(p.shape));
      x = jax.random.uniform(key(2), [batch, 3, size, size]);
      y = jax.nn.oneHot(np.floor(np.multiply(jax.random.uniform(key(3), [batch]), 2)).astype(np.int32), 2);
      const loss = (p: A[], xb: A, yb: A): A => np.negative(np.mean(np.sum(np.multiply(yb, jax.nn.logSoftmax(forward(p, xb), -1)), -1)));
      step = jax.jit((p: A[], m0: A[], v0: A[], lr: A, xb: A, yb: A) => {
        const [l, g] = jax.valueAndGrad(loss)(p.map((q) => q.ref), xb, yb) as [A, A[]];
        const m1 = m0.map((mi, i) => np.add(np.multiply(mi, 0.9), np.multiply(g[i]!.ref, 0.1)));
        const v1 = v0.map((vi, i) => np.add(np.multiply(vi, 0.999), np.multiply(np.square(g[i]!), 0.001)));
        const p1 = p.map((pi, i) => np.subtract(pi, np.divide(np.multiply(m1[i]!.ref, lr.ref), np.add(np.sqrt(v1[i]!.ref), 1e-7))));
        lr.dispose();
        return [l, p1, m1, v1];
      }) as unknown as typeof step;
      await jax.blockUntilReady(params);
    },
    run: async () => {
      t++;
      // Keras' Adam: the bias corrections folded into the step size.
      const lr = np.array([1e-3 * Math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)]);
      const [l, p1, m1, v1] = step(params, m, v, lr, x.ref, y.ref);
      params = p1; m = m1; v = v1;
      await l.blockUntilReady();
      l.dispose();
    },
    teardown: () => { for (const a of [...params, ...m, ...v, x, y]) a.dispose(); },
  };
}
