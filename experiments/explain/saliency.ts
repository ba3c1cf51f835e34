// Vanilla gradient saliency as the protocol defines it (keras-vis): |d logit_c / d x| for the
// predicted class c (softmax removed), max over colour channels, min-max normalised to [0, 1],
// then a Gaussian blur of sigma 5 px. SmoothGrad (Smilkov et al. 2017) averages the raw
// gradient over noisy copies of the input first. Gradients come from the engine in batches;
// the blur is a small separable filter on the CPU (reflect edges, as scipy's gaussian_filter).
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { type Classifier, freeze } from '../attacks/gradient.js';

export interface SaliencyOptions {
  /** Gaussian blur sigma in pixels; default the protocol's 5 px at 224 px, scaled with the image side (0: none). */
  sigma?: number;
  /** SmoothGrad: average over this many noisy copies (0: vanilla gradient). */
  smoothSamples?: number;
  /** SmoothGrad noise as a fraction of the input range (Smilkov et al.: 0.1 to 0.2). */
  smoothNoise?: number;
  generator?: E.Generator;
}

export interface SaliencyResult {
  /** N x H x W maps in [0, 1]. */
  maps: Float32Array;
  /** The predicted class and its softmax probability per image. */
  pred: number[];
  confidence: number[];
}

/** Saliency maps for a batch x (N x C x H x W) of images in [0, 1]. */
export async function saliency(model: Classifier, x: Tensor, o: SaliencyOptions = {}): Promise<SaliencyResult> {
  const [n, , h, w] = x.shape as [number, number, number, number];
  const restore = freeze(model);
  try {
    const [logits, probs] = E.noGrad(() => E.tidy(() => { const l = model.forward(x); return [l, E.softmax(l, -1)]; }));
    const pred = Array.from(await E.argmax(logits!, -1).data());
    const p = await probs!.data();
    const classes = logits!.shape[1]!;
    E.dispose([logits, probs]);
    const oneHot = E.tensor(Float32Array.from({ length: n * classes }, (_, i) => (pred[Math.floor(i / classes)] === i % classes ? 1 : 0)), [n, classes]);
    const samples = Math.max(o.smoothSamples ?? 0, 0);
    const gen = o.generator ?? new E.Generator(0);
    const gradOf = (input: Tensor): Tensor => E.tidy(() => {
      const xi = E.detach(input);
      xi.requiresGrad = true;
      // d logit_c / d x: the class logit picked by the one-hot mask (no softmax), summed over the batch.
      return E.grad(E.sum(E.mul(model.forward(xi), oneHot)), [xi])[0]!;
    });
    const g = samples > 0
      ? E.tidy(() => {
        let acc = E.zeros(x.shape);
        for (let s = 0; s < samples; s++) {
          const noisy = E.add(x, E.randn(x.shape, { std: o.smoothNoise ?? 0.15, generator: gen }));
          const next = E.add(acc, E.abs(gradOf(noisy)));
          acc.dispose();
          acc = next;
        }
        return E.div(acc, samples);
      })
      : E.tidy(() => E.abs(gradOf(x)));
    const raw = await E.tidy(() => E.max(g, 1)).data();
    E.dispose([g, oneHot]);
    const maps = new Float32Array(n * h * w);
    for (let i = 0; i < n; i++) {
      const m = normalise(raw.subarray(i * h * w, (i + 1) * h * w) as Float32Array);
      maps.set(gaussianBlur(m, h, w, o.sigma ?? defaultSigma(w)), i * h * w);
    }
    return { maps, pred, confidence: pred.map((k, i) => p[i * classes + k]!) };
  } finally {
    restore();
  }
}

/** The protocol's blur (sigma 5 px on 224 px images) at another image size. */
export const defaultSigma = (side: number): number => (5 * side) / 224;

/** Min-max normalisation to [0, 1] (a constant map becomes zeros). */
export function normalise(m: Float32Array): Float32Array {
  let lo = Infinity, hi = -Infinity;
  for (const v of m) { if (v < lo) lo = v; if (v > hi) hi = v; }
  const span = hi - lo;
  return Float32Array.from(m, (v) => (span > 0 ? (v - lo) / span : 0));
}

/** Separable Gaussian blur, kernel truncated at 4 sigma, edges mirrored (scipy.ndimage's 'reflect'). */
export function gaussianBlur(m: Float32Array, h: number, w: number, sigma: number): Float32Array {
  if (sigma <= 0) return Float32Array.from(m);
  const r = Math.ceil(4 * sigma);
  const k = Array.from({ length: 2 * r + 1 }, (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma * sigma)));
  const sum = k.reduce((a, b) => a + b, 0);
  const kn = k.map((v) => v / sum);
  // scipy 'reflect': (d c b a | a b c d | d c b a), repeated for kernels wider than the image.
  const reflect = (i: number, n: number): number => {
    const period = 2 * n;
    let j = ((i % period) + period) % period;
    if (j >= n) j = period - 1 - j;
    return j;
  };
  const pass = (src: Float32Array, horizontal: boolean): Float32Array => {
    const out = new Float32Array(h * w);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let acc = 0;
        for (let t = -r; t <= r; t++) {
          acc += kn[t + r]! * (horizontal ? src[y * w + reflect(x + t, w)]! : src[reflect(y + t, h) * w + x]!);
        }
        out[y * w + x] = acc;
      }
    }
    return out;
  };
  return pass(pass(m, true), false);
}
