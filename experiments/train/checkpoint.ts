// Training checkpoints in a run folder: weights as safetensors with PyTorch-style names
// (model.safetensors, and best.safetensors for the best validation epoch), optimiser moments
// (optimizer.safetensors) and a JSON sidecar (checkpoint.json) with the architecture, its options
// and the training state. Every file is written to a temporary name and renamed, and the
// sidecar last, so a killed process leaves the previous complete checkpoint.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../engine/index.js';
import { decodeSafetensors, encodeSafetensors, fromRaw, toRaw } from '../../nn/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';

export interface Sidecar<S = unknown> {
  format: 'medgrad-checkpoint/1';
  architecture: string;
  modelOptions: Record<string, unknown>;
  state: S;
}

export async function saveTensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  writeFileAtomic(path, encodeSafetensors(await toRaw(tensors), metadata));
}

/** Loads a safetensors file as tensors (owned by the caller). */
export function loadTensors(path: string): Record<string, Tensor> {
  if (!existsSync(path)) throw new Error(`medgrad: checkpoint file ${path} does not exist`);
  return fromRaw(decodeSafetensors(new Uint8Array(readFileSync(path)), path).tensors);
}

export function writeSidecar(dir: string, sidecar: Sidecar): void {
  writeFileAtomic(join(dir, 'checkpoint.json'), JSON.stringify(sidecar, null, 2) + '\n');
}

export function readSidecar<S>(dir: string): Sidecar<S> {
  const file = join(dir, 'checkpoint.json');
  if (!existsSync(file)) throw new Error(`medgrad: ${dir} holds no checkpoint (checkpoint.json is missing)`);
  const s = JSON.parse(readFileSync(file, 'utf8')) as Sidecar<S>;
  if (s.format !== 'medgrad-checkpoint/1') throw new Error(`medgrad: ${file}: unknown checkpoint format '${String(s.format)}'`);
  return s;
}
