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
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces to align the data to 8 bytes, counting UTF-8 bytes (a non-ASCII tensor
  // name takes more bytes than UTF-16 code units).
  const headerBytes = new Uint8Array(json.length + ((8 - (json.length % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
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

interface Entry { name: string; dtype: 'F32' | 'I32'; shape: number[]; begin: number; end: number }

/** One header entry checked: a known dtype, a shape of non-negative integers, integer offsets. */
function entryOf(name: string, raw: unknown, source: string): Entry {
  const bad = (why: string) => new Error(`medgrad: ${source}: tensor '${name}' ${why}`);
  if (!raw || typeof raw !== 'object') throw bad('has no { dtype, shape, data_offsets } entry');
  const { dtype, shape, data_offsets: off } = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (dtype !== 'F32' && dtype !== 'I32') throw bad(`has dtype ${String(dtype)}; only F32 and I32 are supported`);
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`has a bad shape ${JSON.stringify(shape)}`);
  if (!Array.isArray(off) || off.length !== 2 || off.some((v) => !Number.isSafeInteger(v) || v < 0) || off[0] > off[1]) {
    throw bad(`has bad data_offsets ${JSON.stringify(off)} (two integers, begin <= end)`);
  }
  const bytes = (shape as number[]).reduce((x, y) => x * y, 1) * 4;
  if (off[1] - off[0] !== bytes) throw bad(`has data_offsets [${off.join(', ')}] (${off[1] - off[0]} bytes) but dtype ${dtype} x shape [${shape.join(', ')}] needs ${bytes} bytes`);
  return { name, dtype, shape: shape as number[], begin: off[0], end: off[1] };
}

/**
 * Parses safetensors bytes, validating as the reference implementation does: every offset
 * in range, the tensors' byte ranges in order, neither overlapping nor leaving holes, and
 * each range the size its dtype and shape need. Errors name `source` and the tensor.
 */
export function decodeSafetensors(bytes: Uint8Array, source = 'safetensors data'): { tensors: Record<string, RawTensor>; metadata: Record<string, string> } {
  if (bytes.length < 8) throw new Error(`medgrad: ${source} is truncated (${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > bytes.length) throw new Error(`medgrad: ${source} is truncated: its header claims ${n} bytes, the file has ${bytes.length - 8} after the length`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    throw new Error(`medgrad: ${source} has an unreadable header: ${(e as Error).message}`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) throw new Error(`medgrad: ${source}: the header is not a JSON object`);
  const base = 8 + n;
  const dataBytes = bytes.length - base;
  let metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!raw || typeof raw !== 'object' || Object.values(raw).some((v) => typeof v !== 'string')) throw new Error(`medgrad: ${source}: __metadata__ must map names to strings`);
      metadata = raw as Record<string, string>;
      continue;
    }
    const e = entryOf(name, raw, source);
    if (e.end > dataBytes) throw new Error(`medgrad: ${source}: tensor '${name}' is truncated: its data_offsets end at ${e.end} but the file has ${dataBytes} data bytes`);
    entries.push(e);
  }
  entries.sort((x, y) => x.begin - y.begin || x.end - y.end);
  let at = 0;
  for (const e of entries) {
    if (e.begin < at) throw new Error(`medgrad: ${source}: tensor '${e.name}' (bytes ${e.begin}..${e.end}) overlaps the tensor before it (ending at ${at})`);
    if (e.begin > at) throw new Error(`medgrad: ${source}: tensor '${e.name}' starts at byte ${e.begin}, leaving a hole after byte ${at}`);
    at = e.end;
  }
  if (at !== dataBytes) throw new Error(`medgrad: ${source}: the tensors cover ${at} data bytes but the file has ${dataBytes}`);
  const tensors: Record<string, RawTensor> = {};
  for (const e of entries) {
    // A copy (aligned, and not the file's buffer): a Node Buffer's slice() would be a view.
    const copy = new Uint8Array(bytes.subarray(base + e.begin, base + e.end));
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: e.dtype === 'F32' ? new Float32Array(copy.buffer) : new Int32Array(copy.buffer) };
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
