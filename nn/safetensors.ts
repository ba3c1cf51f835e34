// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length, a JSON header { name: { dtype, shape, data_offsets }, __metadata__ }, then
// the raw little-endian data. Pure functions over bytes, so Node and the browser share them.
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export interface RawTensor { dtype: 'F32' | 'I32'; shape: number[]; data: Float32Array | Int32Array }

export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const n of names) {
    const t = tensors[n]!;
    header[n] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // align the data to 8 bytes
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const n of names) {
    const d = tensors[n]!.data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    at += d.byteLength;
  }
  return out;
}

export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`medgrad: ${source} is truncated (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`medgrad: ${source} is truncated: its header claims ${n} bytes, the file has ${bytes.length - 8} after the length`);
  let header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`medgrad: ${source} has an unreadable header: ${(e as Error).message}`);
  }
  const base = 8 + n;
  const tensors: Record<string, RawTensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') { metadata = entry as Record<string, string>; continue; }
    const { dtype, shape, data_offsets: [a, b] } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32' && dtype !== 'I32') throw new Error(`medgrad: ${source}: tensor '${name}' has dtype ${dtype}; only F32 and I32 are supported`);
    if (base + b > bytes.length || b - a !== shape.reduce((x, y) => x * y, 1) * 4) throw new Error(`medgrad: ${source}: tensor '${name}' is truncated or its size does not match shape [${shape.join(', ')}]`);
    const copy = bytes.slice(base + a, base + b);
    tensors[name] = { dtype, shape, data: dtype === 'F32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer) };
  }
  return { tensors, metadata };
}

/** Reads GPU tensors back into safetensors entries. */
export async function toRaw(tensors: Record<string, Tensor>): Promise<Record<string, RawTensor>> {
  const out: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    const data = await t.data();
    out[k] = { dtype: t.dtype === 'int32' ? 'I32' : 'F32', shape: [...t.shape], data };
  }
  return out;
}

/** Uploads safetensors entries as tensors (owned by the caller). */
export function fromRaw(raw: Record<string, RawTensor>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(raw).map(([k, r]) => [k, E.tensor(r.data, r.shape, { dtype: r.dtype === 'I32' ? 'int32' : 'float32' })]));
}
