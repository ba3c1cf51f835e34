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

/** Values as plain numbers (int64 labels included). */
export function toNumbers(a: NpyArray): Float64Array {
  if (a.data instanceof BigInt64Array) return Float64Array.from(a.data, (v) => Number(v));
  return Float64Array.from(a.data as ArrayLike<number>);
}
