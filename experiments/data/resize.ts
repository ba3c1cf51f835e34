// Resizing one channel plane, separably. Bicubic is the protocol's (Keys' kernel with a = -0.5,
// as PIL uses); bilinear is offered for speed. Samples at pixel centres, edges clamped;
// downscaling widens the kernel by the scale factor so it averages instead of aliasing (PIL's way).

export type ResizeMethod = 'bicubic' | 'bilinear';

const cubic = (t: number) => {
  const a = -0.5, x = Math.abs(t);
  return x <= 1 ? (a + 2) * x ** 3 - (a + 3) * x ** 2 + 1 : x < 2 ? a * x ** 3 - 5 * a * x ** 2 + 8 * a * x - 4 * a : 0;
};
const linear = (t: number) => Math.max(0, 1 - Math.abs(t));

/** Per output index: source indices and normalised weights. */
function weights(inSize: number, outSize: number, method: ResizeMethod): Array<{ idx: number[]; w: number[] }> {
  const kernel = method === 'bicubic' ? cubic : linear;
  const support = method === 'bicubic' ? 2 : 1;
  const scale = inSize / outSize;
  const stretch = Math.max(scale, 1);
  return Array.from({ length: outSize }, (_, o) => {
    const centre = (o + 0.5) * scale - 0.5;
    const lo = Math.floor(centre - support * stretch), hi = Math.ceil(centre + support * stretch);
    const idx: number[] = [], w: number[] = [];
    for (let i = lo; i <= hi; i++) {
      const k = kernel((i - centre) / stretch);
      if (k === 0) continue;
      idx.push(Math.min(Math.max(i, 0), inSize - 1));
      w.push(k);
    }
    const total = w.reduce((a, b) => a + b, 0);
    return { idx, w: w.map((v) => v / total) };
  });
}

/** Resizes an H x W plane to outH x outW. */
export function resizePlane(src: Float32Array, h: number, w: number, outH: number, outW: number, method: ResizeMethod = 'bicubic'): Float32Array {
  if (h === outH && w === outW) return src.slice();
  const wx = weights(w, outW, method), wy = weights(h, outH, method);
  const tmp = new Float32Array(h * outW);
  for (let i = 0; i < h; i++) for (let j = 0; j < outW; j++) {
    const { idx, w: ws } = wx[j]!;
    let s = 0;
    for (let k = 0; k < idx.length; k++) s += src[i * w + idx[k]!]! * ws[k]!;
    tmp[i * outW + j] = s;
  }
  const out = new Float32Array(outH * outW);
  for (let i = 0; i < outH; i++) {
    const { idx, w: ws } = wy[i]!;
    for (let j = 0; j < outW; j++) {
      let s = 0;
      for (let k = 0; k < idx.length; k++) s += tmp[idx[k]! * outW + j]! * ws[k]!;
      out[i * outW + j] = Math.min(1, Math.max(0, s));
    }
  }
  return out;
}
