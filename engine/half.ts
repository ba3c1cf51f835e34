// IEEE 754 binary16 on the host: float16 tensors are uploaded and read back as 16-bit patterns
// (Node 20 has no Float16Array). Rounding is to nearest, ties to even, as the GPU's cast kernel
// (shaders/cast16.wgsl) does it bit for bit: values past the largest finite half (65504) round to
// Infinity, tiny ones to subnormals or signed zero, and NaN stays NaN (quiet, sign kept).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The binary16 bit pattern nearest to `x` (first rounded to float32, as a float32 tensor holds it). */
export function toHalfBits(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man !== 0 ? 0x200 | (man >>> 13) : 0);
  const e = exp - 127 + 15; // the half's biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand (with its hidden bit) right.
    if (e < -10) return sign;
    const m = man | 0x800000;
    const shift = 14 - e; // 13 for the mantissa width difference, plus 1 - e
    const kept = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (kept + (rest > half || (rest === half && (kept & 1) === 1) ? 1 : 0));
  }
  const kept = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and from 30 gives Infinity: both correct.
  return sign | (kept + (rest > 0x1000 || (rest === 0x1000 && (kept & 1) === 1) ? 1 : 0));
}

/** The value of a binary16 bit pattern. */
export function fromHalfBits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man === 0 ? sign * Infinity : NaN;
  return sign * (1024 + man) * 2 ** (exp - 25);
}

/** `x` rounded to the nearest float16 value (the reference of what float16 storage holds). */
export const roundHalf = (x: number): number => fromHalfBits(toHalfBits(x));

/** Host values as float16 patterns, padded to an even length (GPU writes are whole 4-byte words). */
export function halfBits(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length + (values.length & 1));
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]!);
  return out;
}

/** float16 patterns as float32 values (every half is exactly a float32). */
export function halfToFloat32(bits: Uint16Array, n = bits.length): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = fromHalfBits(bits[i]!);
  return out;
}
