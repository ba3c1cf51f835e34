// NumPy .npy arrays (format versions 1-3) and .npz archives (a zip of .npy files, inflated
// with fflate). Little-endian uint8, int32, int64, float32 and float64 are read.
import { unzipSync } from 'fflate';

export interface NpyArray { shape: number[]; dtype: string; data: Uint8Array | Int32Array | Float32Array | Float64Array | BigInt64Array }

export function parseNpy(bytes: Uint8Array, source: string): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.length < 10 || magic.some((m, i) => bytes[i] !== m)) throw new Error(`medgrad: ${source} is not a .npy array (bad magic)`);
  const major = bytes[6]!;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`medgrad: ${source}: unreadable .npy header ${JSON.stringify(header.trim())}`);
  if (fortran === 'True') throw new Error(`medgrad: ${source}: Fortran-ordered arrays are not supported`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.slice(start + headerLen);
  const types: Record<string, [number, (b: ArrayBuffer) => NpyArray['data']]> = {
    '|u1': [1, (b) => new Uint8Array(b)], '<u1': [1, (b) => new Uint8Array(b)],
    '<i4': [4, (b) => new Int32Array(b)], '<i8': [8, (b) => new BigInt64Array(b)],
    '<f4': [4, (b) => new Float32Array(b)], '<f8': [8, (b) => new Float64Array(b)],
  };
  const t = types[descr];
  if (!t) throw new Error(`medgrad: ${source}: dtype ${descr} is not supported (uint8, int32, int64, float32, float64)`);
  if (body.length < count * t[0]) throw new Error(`medgrad: ${source} is truncated: shape (${shape.join(', ')}) needs ${count * t[0]} bytes, found ${body.length}`);
  return { shape, dtype: descr, data: t[1](body.buffer.slice(0, count * t[0])) };
}

/** Every array of an .npz file by key (the file name without .npy). */
export function parseNpz(bytes: Uint8Array, source: string): Record<string, NpyArray> {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(`medgrad: ${source} is not a readable .npz (zip) file: ${(e as Error).message}`);
  }
  const out: Record<string, NpyArray> = {};
  for (const [name, data] of Object.entries(files)) {
    if (name.endsWith('.npy')) out[name.slice(0, -4)] = parseNpy(data, `${source}:${name}`);
  }
  return out;
}

/**
 * How an image array's values map to [0, 1], decided once per array: uint8 and integer
 * arrays are 0..255 (divided by 255); float arrays whose values all lie in [0, 1] are taken
 * as they are, float arrays within [0, 255] (and beyond 1) are divided by 255. Anything else
 * (NaN, infinities, negative values, values above 255) cannot be an image and is refused,
 * naming `source`. The rule is per array, so a very dark 0..255 float image that happens to
 * stay below 1 would be taken as [0, 1]: store such data as uint8.
 */
export function imageScale(a: NpyArray, source: string): number {
  let lo = Infinity, hi = -Infinity;
  const d = a.data;
  if (d instanceof BigInt64Array) {
    for (const v of d) { const x = Number(v); if (x < lo) lo = x; if (x > hi) hi = x; }
  } else {
    for (let i = 0; i < d.length; i++) {
      const x = d[i]!;
      if (!Number.isFinite(x)) throw new Error(`medgrad: ${source} holds ${x} at element ${i}; an image array must be finite`);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  if (d.length === 0 || d instanceof Uint8Array) return 1 / 255;
  const isFloat = d instanceof Float32Array || d instanceof Float64Array;
  if (lo < 0 || hi > 255) throw new Error(`medgrad: ${source} (${a.dtype}) has values in [${lo}, ${hi}]; images must lie in [0, 1] (float) or [0, 255]`);
  return isFloat && hi <= 1 ? 1 : 1 / 255;
}

/**
 * Class labels from an array of shape [n] or [n, 1] (MedMNIST's), as int32: each a
 * non-negative integer. A [n, k] array with k > 1 (multi-label, as in ChestMNIST) is refused.
 */
export function classLabels(a: NpyArray, source: string): Int32Array {
  if (a.shape.length > 2 || (a.shape.length === 2 && a.shape[1] !== 1) || a.shape.length === 0) {
    throw new Error(`medgrad: ${source} has shape (${a.shape.join(', ')}); expected one class label per image (N or N x 1): multi-label data is not supported`);
  }
  const v = toNumbers(a);
  const out = new Int32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (!Number.isInteger(x) || x < 0 || x > 0x7fffffff) throw new Error(`medgrad: ${source}: label ${x} of image ${i} is not a class index (a non-negative integer)`);
    out[i] = x;
  }
  return out;
}

/** Values as plain numbers (int64 labels included). */
export function toNumbers(a: NpyArray): Float64Array {
  if (a.data instanceof BigInt64Array) return Float64Array.from(a.data, (v) => Number(v));
  return Float64Array.from(a.data as ArrayLike<number>);
}
