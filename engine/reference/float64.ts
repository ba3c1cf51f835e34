// An independent float64 reference for every engine op, in plain TypeScript: no GPU and no code
// shared with the engine (shape helpers are re-derived here). Op records point at it; the tests
// compare the GPU against it.

export interface Arr { shape: number[]; data: Float64Array }

export const arr = (shape: number[], data: ArrayLike<number>): Arr => ({ shape: [...shape], data: Float64Array.from(data) });
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
export const stridesOf = (s: number[]) => { const r = s.map(() => 1); for (let i = s.length - 2; i >= 0; i--) r[i] = r[i + 1]! * s[i + 1]!; return r; };

/** Multi-index of flat position i in shape s. */
function unravel(i: number, s: number[]): number[] {
  const idx = new Array<number>(s.length);
  for (let d = s.length - 1; d >= 0; d--) { idx[d] = i % s[d]!; i = Math.floor(i / s[d]!); }
  return idx;
}
const ravel = (idx: number[], s: number[]) => idx.reduce((acc, v, d) => acc * s[d]! + v, 0);

export function map(a: Arr, f: (x: number) => number): Arr { return arr(a.shape, a.data.map(f)); }

function bshape(a: number[], b: number[]): number[] {
  const n = Math.max(a.length, b.length);
  return Array.from({ length: n }, (_, i) => {
    const x = a[a.length - n + i] ?? 1, y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error('ref: no broadcast');
    return Math.max(x, y);
  });
}
/** Value of a at the output multi-index idx under broadcasting. */
function at(a: Arr, idx: number[]): number {
  const off = idx.length - a.shape.length;
  return a.data[ravel(a.shape.map((d, i) => (d === 1 ? 0 : idx[i + off]!)), a.shape)]!;
}

export function zip(arrs: Arr[], f: (...x: number[]) => number): Arr {
  const s = arrs.map((a) => a.shape).reduce(bshape);
  const out = new Float64Array(size(s));
  for (let i = 0; i < out.length; i++) { const idx = unravel(i, s); out[i] = f(...arrs.map((a) => at(a, idx))); }
  return { shape: s, data: out };
}

export function broadcastTo(a: Arr, s: number[]): Arr { return zip([a, arr(s, new Float64Array(size(s)))], (x) => x); }

export function reduce(a: Arr, axes: number[] | undefined, keepdims: boolean, init: number, f: (acc: number, x: number, k: number) => number,
  fin: (acc: number, n: number) => number = (x) => x): Arr {
  const ax = (axes ?? a.shape.map((_, i) => i)).map((x) => (x < 0 ? x + a.shape.length : x));
  const keepShape = a.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  const acc = new Float64Array(size(keepShape)).fill(init);
  const count = size(ax.map((i) => a.shape[i]!));
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape);
    const o = ravel(idx.map((v, d) => (ax.includes(d) ? 0 : v)), keepShape);
    const k = ravel(ax.map((d) => idx[d]!), ax.map((d) => a.shape[d]!));
    acc[o] = f(acc[o]!, a.data[i]!, k);
  }
  const out = acc.map((v) => fin(v, count));
  return { shape: keepdims ? keepShape : a.shape.filter((_, i) => !ax.includes(i)), data: out };
}

export const sum = (a: Arr, axes?: number[], keep = false) => reduce(a, axes, keep, 0, (s, x) => s + x);
export const mean = (a: Arr, axes?: number[], keep = false) => reduce(a, axes, keep, 0, (s, x) => s + x, (s, n) => s / n);
export const max = (a: Arr, axes?: number[], keep = false) => reduce(a, axes, keep, -Infinity, (s, x) => Math.max(s, x));
export const min = (a: Arr, axes?: number[], keep = false) => reduce(a, axes, keep, Infinity, (s, x) => Math.min(s, x));

/** Index of the extreme along one axis (first on ties). */
export function argExt(a: Arr, axis: number, keepdims: boolean, better: (x: number, y: number) => boolean): Arr {
  const ax = axis < 0 ? axis + a.shape.length : axis;
  const outShape = a.shape.map((d, i) => (i === ax ? 1 : d));
  const best = new Float64Array(size(outShape)).fill(NaN);
  const arg = new Float64Array(best.length);
  for (let i = 0; i < a.data.length; i++) {
    const idx = unravel(i, a.shape);
    const k = idx[ax]!;
    idx[ax] = 0;
    const o = ravel(idx, outShape);
    if (Number.isNaN(best[o]!) || better(a.data[i]!, best[o]!)) { best[o] = a.data[i]!; arg[o] = k; }
  }
  return { shape: keepdims ? outShape : a.shape.filter((_, i) => i !== ax), data: arg };
}

export function permute(a: Arr, p: number[]): Arr {
  const s = p.map((i) => a.shape[i]!);
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < out.length; i++) {
    const idx = unravel(i, s);
    const src = new Array<number>(p.length);
    p.forEach((axis, j) => { src[axis] = idx[j]!; });
    out[i] = a.data[ravel(src, a.shape)]!;
  }
  return { shape: s, data: out };
}

export function slice(a: Arr, starts: number[], ends: number[]): Arr {
  const s = a.shape.map((_, i) => ends[i]! - starts[i]!);
  const out = new Float64Array(size(s));
  for (let i = 0; i < out.length; i++) out[i] = a.data[ravel(unravel(i, s).map((v, d) => v + starts[d]!), a.shape)]!;
  return { shape: s, data: out };
}

export function pad(a: Arr, pads: [number, number][], value: number): Arr {
  const s = a.shape.map((d, i) => d + pads[i]![0] + pads[i]![1]);
  const out = new Float64Array(size(s)).fill(value);
  for (let i = 0; i < a.data.length; i++) out[ravel(unravel(i, a.shape).map((v, d) => v + pads[d]![0]), s)] = a.data[i]!;
  return { shape: s, data: out };
}

export function concat(xs: Arr[], axis: number): Arr {
  const s = [...xs[0]!.shape];
  s[axis] = xs.reduce((t, x) => t + x.shape[axis]!, 0);
  const out = new Float64Array(size(s));
  let offset = 0;
  for (const x of xs) {
    for (let i = 0; i < x.data.length; i++) {
      const idx = unravel(i, x.shape);
      idx[axis] = idx[axis]! + offset;
      out[ravel(idx, s)] = x.data[i]!;
    }
    offset += x.shape[axis]!;
  }
  return { shape: s, data: out };
}

/** Batched matmul with broadcasting of leading dimensions (2-D or more on both sides). */
export function matmul(a: Arr, b: Arr): Arr {
  const [M, K] = a.shape.slice(-2) as [number, number];
  const N = b.shape[b.shape.length - 1]!;
  const batch = bshape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const A = broadcastTo(a, [...batch, M, K]);
  const B = broadcastTo(b, [...batch, K, N]);
  const nb = size(batch);
  const out = new Float64Array(nb * M * N);
  for (let z = 0; z < nb; z++) for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s = 0;
    for (let k = 0; k < K; k++) s += A.data[z * M * K + i * K + k]! * B.data[z * K * N + k * N + j]!;
    out[z * M * N + i * N + j] = s;
  }
  return { shape: [...batch, M, N], data: out };
}

/** Softmax or log-softmax along the last axis. */
export function softmax(a: Arr, log = false): Arr {
  const C = a.shape[a.shape.length - 1]!;
  const out = new Float64Array(a.data.length);
  for (let r = 0; r < a.data.length / C; r++) {
    const row = a.data.subarray(r * C, r * C + C);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0));
    for (let k = 0; k < C; k++) out[r * C + k] = log ? row[k]! - lse : Math.exp(row[k]! - lse);
  }
  return { shape: [...a.shape], data: out };
}

export function crossEntropy(logits: Arr, labels: number[]): Arr {
  const ls = softmax(logits, true);
  const C = logits.shape[1]!;
  return arr([labels.length], labels.map((y, i) => -ls.data[i * C + y]!));
}

/** Central finite differences of a scalar function in float64. */
export function numericGrad(f: (xs: Arr[]) => number, xs: Arr[], h = 1e-6): Arr[] {
  return xs.map((x) => {
    const g = new Float64Array(x.data.length);
    for (let i = 0; i < g.length; i++) {
      const orig = x.data[i]!;
      x.data[i] = orig + h; const fp = f(xs);
      x.data[i] = orig - h; const fm = f(xs);
      x.data[i] = orig;
      g[i] = (fp - fm) / (2 * h);
    }
    return { shape: [...x.shape], data: g };
  });
}

// ---- CNN references (NCHW) ----

/** Explicit pads [top, bottom, left, right] of TensorFlow's 'same' for one input size. */
export function tfSamePads(H: number, W: number, KH: number, KW: number, sh: number, sw: number): [number, number, number, number] {
  const one = (n: number, k: number, s: number): [number, number] => {
    const total = Math.max((Math.ceil(n / s) - 1) * s + k - n, 0);
    return [Math.floor(total / 2), Math.ceil(total / 2)];
  };
  return [...one(H, KH, sh), ...one(W, KW, sw)] as [number, number, number, number];
}

/**
 * Calls f(output, input, weight) with the flat indices of every product a convolution sums:
 * each output pixel and channel with each tap whose input lies inside the image.
 */
function convTaps(xShape: number[], wShape: number[], sh: number, sw: number, pads: [number, number, number, number], f: (yi: number, xi: number, wi: number) => void): number[] {
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [Co, , KH, KW] = wShape as [number, number, number, number];
  const [pt, pb, pl, pr] = pads;
  const OH = Math.floor((H + pt + pb - KH) / sh) + 1, OW = Math.floor((W + pl + pr - KW) / sw) + 1;
  for (let n = 0; n < N; n++) for (let o = 0; o < Co; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const yi = ((n * Co + o) * OH + i) * OW + j;
    for (let c = 0; c < C; c++) for (let u = 0; u < KH; u++) for (let v = 0; v < KW; v++) {
      const ih = i * sh - pt + u, iw = j * sw - pl + v;
      if (ih >= 0 && ih < H && iw >= 0 && iw < W) f(yi, ((n * C + c) * H + ih) * W + iw, ((o * C + c) * KH + u) * KW + v);
    }
  }
  return [N, Co, OH, OW];
}

export function conv2d(x: Arr, w: Arr, b: Arr | null, sh: number, sw: number, pads: [number, number, number, number]): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [Co, , KH, KW] = w.shape as [number, number, number, number];
  const OH = Math.floor((H + pads[0] + pads[1] - KH) / sh) + 1, OW = Math.floor((W + pads[2] + pads[3] - KW) / sw) + 1;
  const out = new Float64Array(N * Co * OH * OW);
  if (b) for (let k = 0; k < out.length; k++) out[k] = b.data[Math.floor(k / (OH * OW)) % Co]!;
  const shape = convTaps([N, C, H, W], w.shape, sh, sw, pads, (yi, xi, wi) => { out[yi]! += x.data[xi]! * w.data[wi]!; });
  return { shape, data: out };
}

/** The columns a convolution multiplies its [Cout, C KH KW] weights by: [N, C KH KW, OH OW], zero in the padding. */
export function im2col(x: Arr, KH: number, KW: number, sh: number, sw: number, pads: [number, number, number, number]): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const OH = Math.floor((H + pads[0] + pads[1] - KH) / sh) + 1, OW = Math.floor((W + pads[2] + pads[3] - KW) / sw) + 1;
  const K = C * KH * KW, P = OH * OW, out = new Float64Array(N * K * P);
  // One output channel: the output index is n P + pixel, the weight index the column's k.
  convTaps(x.shape, [1, C, KH, KW], sh, sw, pads, (yi, xi, k) => { out[(Math.floor(yi / P) * K + k) * P + (yi % P)] = x.data[xi]!; });
  return { shape: [N, K, P], data: out };
}

/** d<dy, conv2d(x, w)>/dx: each output's cotangent times the weights, added at the inputs its window read. */
export function conv2dInputGrad(dy: Arr, w: Arr, xShape: number[], sh: number, sw: number, pads: [number, number, number, number]): Arr {
  const dx = new Float64Array(xShape.reduce((a, d) => a * d, 1));
  convTaps(xShape, w.shape, sh, sw, pads, (yi, xi, wi) => { dx[xi]! += dy.data[yi]! * w.data[wi]!; });
  return { shape: [...xShape], data: dx };
}

/** d<dy, conv2d(x, w)>/dw: each output's cotangent times the inputs its window read. */
export function conv2dWeightGrad(dy: Arr, x: Arr, wShape: number[], sh: number, sw: number, pads: [number, number, number, number]): Arr {
  const dw = new Float64Array(wShape.reduce((a, d) => a * d, 1));
  convTaps(x.shape, wShape, sh, sw, pads, (yi, xi, wi) => { dw[wi]! += dy.data[yi]! * x.data[xi]!; });
  return { shape: [...wShape], data: dw };
}

/** Max or average pooling; padding never takes part (average divides by real inputs). */
export function pool2d(x: Arr, kind: 'max' | 'avg', KH: number, KW: number, sh: number, sw: number, pads: [number, number, number, number]): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [pt, pb, pl, pr] = pads;
  const OH = Math.floor((H + pt + pb - KH) / sh) + 1, OW = Math.floor((W + pl + pr - KW) / sw) + 1;
  const out = new Float64Array(N * C * OH * OW);
  for (let p = 0; p < N * C; p++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    let m = -Infinity, s = 0, cnt = 0;
    for (let u = 0; u < KH; u++) for (let v = 0; v < KW; v++) {
      const ih = i * sh - pt + u, iw = j * sw - pl + v;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const val = x.data[(p * H + ih) * W + iw]!;
      m = Math.max(m, val); s += val; cnt++;
    }
    out[(p * OH + i) * OW + j] = kind === 'max' ? m : s / cnt;
  }
  return { shape: [N, C, OH, OW], data: out };
}

/** Batch norm: training uses batch statistics (biased variance), inference the given ones. */
export function batchNorm(x: Arr, gamma: Arr, beta: Arr, eps: number, stats?: { mean: Arr; var: Arr }): { y: Arr; mean: number[]; varBiased: number[] } {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const M = N * H * W;
  const mean: number[] = [], vb: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) s += x.data[(n * C + c) * H * W + k]!;
    const mu = s / M;
    let v = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < H * W; k++) v += (x.data[(n * C + c) * H * W + k]! - mu) ** 2;
    mean.push(mu); vb.push(v / M);
  }
  const y = new Float64Array(x.data.length);
  for (let i = 0; i < y.length; i++) {
    const c = Math.floor(i / (H * W)) % C;
    const mu = stats ? stats.mean.data[c]! : mean[c]!;
    const va = stats ? stats.var.data[c]! : vb[c]!;
    y[i] = ((x.data[i]! - mu) / Math.sqrt(va + eps)) * gamma.data[c]! + beta.data[c]!;
  }
  return { y: { shape: [...x.shape], data: y }, mean, varBiased: vb };
}
