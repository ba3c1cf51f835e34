// safetensors files as the reference implementation reads them: the header's padding counted
// in UTF-8 bytes, and every header entry's offsets validated, with errors naming file and tensor.
import { describe, expect, it } from 'vitest';
import { decodeSafetensors, encodeSafetensors } from '../nn/safetensors.js';

/** A file with the given header (JSON as written, so offsets can be wrong on purpose) and data bytes. */
function file(header: Record<string, unknown>, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

describe('safetensors', () => {
  it('pads the header to 8 bytes in UTF-8 bytes, so a non-ASCII name round-trips aligned', () => {
    for (const name of ['poids_é', 'вес', 'ウェイト', 'w😀', 'plain']) {
      const bytes = encodeSafetensors({ [name]: { dtype: 'F32', shape: [2], data: Float32Array.from([1.5, -2]) } }, { note: 'ü' });
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect((8 + n) % 8, name).toBe(0);
      // The header is valid JSON of exactly n bytes, the data follows at once.
      const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as Record<string, { data_offsets: number[] }>;
      expect(header[name]!.data_offsets).toEqual([0, 8]);
      expect(bytes.length).toBe(8 + n + 8);
      const back = decodeSafetensors(bytes, 'x.safetensors');
      expect(Array.from(back.tensors[name]!.data)).toEqual([1.5, -2]);
      expect(back.metadata).toEqual({ note: 'ü' });
    }
  });

  it('decodes a Node Buffer (what readFileSync returns, possibly a view into a larger pool) to each tensor\'s own values', () => {
    const bytes = encodeSafetensors({ a: { dtype: 'F32', shape: [3], data: Float32Array.from([0.25, -7, 3]) }, b: { dtype: 'I32', shape: [2], data: Int32Array.from([5, -9]) } });
    const pool = Buffer.alloc(bytes.length + 24);
    pool.set(bytes, 24);
    for (const buf of [Buffer.from(bytes), pool.subarray(24)]) {
      const t = decodeSafetensors(buf, 'x.safetensors').tensors;
      expect(Array.from(t.a!.data)).toEqual([0.25, -7, 3]);
      expect(Array.from(t.b!.data)).toEqual([5, -9]);
      expect(t.a!.data.byteLength).toBe(12);
    }
  });

  it('validates offsets: in range, matching dtype x shape, ordered without overlaps or holes', () => {
    const F = 'model.safetensors';
    const t = (begin: number, end: number, shape = [2]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
    const cases: Array<[string, Uint8Array, RegExp]> = [
      ['past the end', file({ a: t(0, 8), b: t(8, 16) }, 12), /model\.safetensors: tensor 'b' is truncated: its data_offsets end at 16 but the file has 12 data bytes/],
      ['size not dtype x shape', file({ a: t(0, 12) }, 12), /model\.safetensors: tensor 'a' has data_offsets \[0, 12\] \(12 bytes\) but dtype F32 x shape \[2\] needs 8 bytes/],
      ['overlap', file({ a: t(0, 8), b: t(4, 12) }, 12), /model\.safetensors: tensor 'b' \(bytes 4\.\.12\) overlaps the tensor before it \(ending at 8\)/],
      ['same range twice', file({ a: t(0, 8), b: t(0, 8) }, 8), /tensor '[ab]' \(bytes 0\.\.8\) overlaps/],
      ['hole', file({ a: t(0, 8), b: t(12, 20) }, 20), /model\.safetensors: tensor 'b' starts at byte 12, leaving a hole after byte 8/],
      ['begin after end', file({ a: t(8, 0) }, 8), /model\.safetensors: tensor 'a' has bad data_offsets \[8,0\]/],
      ['negative offset', file({ a: t(-8, 0) }, 8), /tensor 'a' has bad data_offsets/],
      ['fractional shape', file({ a: t(0, 8, [2.5]) }, 8), /model\.safetensors: tensor 'a' has a bad shape \[2\.5\]/],
      ['unknown dtype', file({ a: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, 4), /model\.safetensors: tensor 'a' has dtype F16; only F32 and I32/],
      ['trailing bytes', file({ a: t(0, 8) }, 12), /model\.safetensors: the tensors cover 8 data bytes but the file has 12/],
      ['not an object', file({ a: 3 }, 0), /model\.safetensors: tensor 'a' has no \{ dtype, shape, data_offsets \} entry/],
    ];
    for (const [what, bytes, err] of cases) expect(() => decodeSafetensors(bytes, F), what).toThrow(err);
    // Out of order in the header but contiguous in the data: valid.
    const ok = decodeSafetensors(file({ b: t(8, 16), a: t(0, 8) }, 16), F);
    expect(Object.keys(ok.tensors).sort()).toEqual(['a', 'b']);
  });
});
