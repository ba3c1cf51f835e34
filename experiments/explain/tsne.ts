// Exact t-SNE (van der Maaten and Hinton 2008) on the engine, with the protocol's settings as
// defaults (perplexity 30, early exaggeration 12, learning rate 200, 1,000 iterations) and
// scikit-learn's optimiser: 250 exaggerated iterations at momentum 0.5, then 0.8, with
// per-coordinate gains. Pairwise distances and every gradient step run on the GPU (n x n
// matrices, fine for a few thousand points); the per-point perplexity search runs on the CPU.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';

export interface TsneOptions {
  perplexity?: number;
  earlyExaggeration?: number;
  learningRate?: number;
  iterations?: number;
  /** Iterations with exaggeration and momentum 0.5 (scikit-learn: 250). */
  exaggerationIterations?: number;
  seed?: number;
}

export interface TsneResult {
  /** n x 2 embedding, row-major. */
  y: Float32Array;
  /** KL(P || Q) of the final embedding. */
  kl: number;
}

/** Squared Euclidean distances between the rows of x (n x d), on the GPU. */
export function squaredDistances(x: Tensor): Tensor {
  return E.tidy(() => {
    const sq = E.sum(E.square(x), 1, true);
    return E.maximum(E.sub(E.add(sq, E.transpose(sq)), E.mul(E.matmul(x, E.transpose(x)), 2)), 0);
  });
}

/**
 * Symmetric joint probabilities P from squared distances: per row, a binary search for the
 * Gaussian precision whose conditional distribution has the wanted perplexity.
 */
export function jointProbabilities(d2: Float32Array, n: number, perplexity: number): Float64Array {
  const target = Math.log(perplexity);
  const cond = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    let beta = 1, lo = -Infinity, hi = Infinity;
    const row = d2.subarray(i * n, (i + 1) * n);
    // Shift by the nearest distance so that exp() does not underflow for far-apart features.
    let dmin = Infinity;
    for (let j = 0; j < n; j++) if (j !== i && row[j]! < dmin) dmin = row[j]!;
    for (let it = 0; it < 100; it++) {
      let sum = 0, dot = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const p = Math.exp(-(row[j]! - dmin) * beta);
        sum += p; dot += (row[j]! - dmin) * p;
      }
      const entropy = Math.log(sum) + (beta * dot) / sum;
      if (Math.abs(entropy - target) < 1e-5) break;
      if (entropy > target) { lo = beta; beta = hi === Infinity ? beta * 2 : (beta + hi) / 2; } else { hi = beta; beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2; }
    }
    let sum = 0;
    for (let j = 0; j < n; j++) if (j !== i) { cond[i * n + j] = Math.exp(-(row[j]! - dmin) * beta); sum += cond[i * n + j]!; }
    for (let j = 0; j < n; j++) cond[i * n + j]! /= sum;
  }
  const p = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) p[i * n + j] = Math.max((cond[i * n + j]! + cond[j * n + i]!) / (2 * n), i === j ? 0 : 1e-12);
  return p;
}

/** Embeds the rows of x (n x d) in two dimensions. */
export async function tsne(x: Tensor, o: TsneOptions = {}): Promise<TsneResult> {
  const n = x.shape[0]!;
  const perplexity = o.perplexity ?? 30;
  if (x.rank !== 2) throw new Error(`medgrad: tsne: features must be [points, dims], got shape ${E.formatShape(x.shape)}`);
  if (n < 3) throw new Error(`medgrad: tsne: needs at least 3 points, got ${n}`);
  if (!(perplexity > 0 && perplexity < n)) throw new Error(`medgrad: tsne: perplexity must be in (0, ${n}) for ${n} points (the protocol's 30 needs more than 30 points), got ${perplexity}`);
  const d2 = squaredDistances(x);
  const pHost = jointProbabilities(await d2.data() as Float32Array, n, perplexity);
  d2.dispose();
  const iterations = o.iterations ?? 1000, exIters = o.exaggerationIterations ?? 250, lr = o.learningRate ?? 200, ex = o.earlyExaggeration ?? 12;
  const P = E.tensor(Float32Array.from(pHost), [n, n]);
  const offDiagonal = E.tensor(Float32Array.from({ length: n * n }, (_, k) => (k % (n + 1) === 0 ? 0 : 1)), [n, n]);
  const s: Record<'y' | 'update' | 'gains', Tensor> = {
    y: E.randn([n, 2], { std: 1e-4, generator: new E.Generator(o.seed ?? 0) }),
    update: E.zeros([n, 2]),
    gains: E.ones([n, 2]),
  };
  // num_ij = 1 / (1 + |y_i - y_j|^2), zero on the diagonal; Q = num / sum(num).
  const kernel = (y: Tensor) => E.mul(E.pow(E.add(squaredDistances(y), 1), -1), offDiagonal);
  for (let it = 0; it < iterations; it++) {
    const exaggeration = it < exIters ? ex : 1, momentum = it < exIters ? 0.5 : 0.8;
    const next = E.tidy(() => {
      const num = kernel(s.y);
      const q = E.maximum(E.div(num, E.sum(num)), 1e-12);
      const pq = E.mul(E.sub(E.mul(P, exaggeration), q), num);
      const grad = E.mul(E.sub(E.mul(E.sum(pq, 1, true), s.y), E.matmul(pq, s.y)), 4);
      // Gains grow where the gradient's sign opposes the last update and shrink where they agree.
      const agree = E.eq(E.gt(grad, 0), E.gt(s.update, 0));
      const gains = E.maximum(E.where(agree, E.mul(s.gains, 0.8), E.add(s.gains, 0.2)), 0.01);
      const update = E.sub(E.mul(s.update, momentum), E.mul(E.mul(gains, grad), lr));
      const y = E.add(s.y, update);
      return { y: E.sub(y, E.mean(y, 0, true)), update, gains };
    });
    E.dispose(s);
    Object.assign(s, next);
    // Keep the queue short: long unsynchronised loops only add latency at the end.
    if (it % 50 === 49) await E.sync();
  }
  const klT = E.tidy(() => {
    const num = kernel(s.y);
    const q = E.maximum(E.div(num, E.sum(num)), 1e-12);
    return E.sum(E.mul(P, E.log(E.div(E.maximum(P, 1e-12), q))));
  });
  const kl = await klT.item();
  klT.dispose();
  const y = await s.y.data() as Float32Array;
  E.dispose([s, P, offDiagonal]);
  return { y, kl };
}
