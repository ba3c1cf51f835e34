// Training checkpoints in a run folder. One checkpoint is a set of files of one epoch k:
// weights (model.e000k.safetensors), optimiser moments (optimizer.e000k.safetensors), the best
// epoch's weights (best.e000j.safetensors, j <= k) and checkpoint.json, which names those files
// and holds the architecture, its options and the training state. The versioned files are
// written first and checkpoint.json last, atomically: that one rename commits the set, so a
// process killed at any point leaves checkpoint.json naming a complete set of one epoch.
// Afterwards best.safetensors (the stable name other tools read) is refreshed from the set and
// files of older sets are removed. Folders of the older layout (fixed names, no `files`) load.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Tensor } from '../../engine/index.js';
import { decodeSafetensors, encodeSafetensors, fromRaw, toRaw } from '../../nn/safetensors.js';
import { copyFileAtomic, removeFile, writeFileAtomic } from '../io/atomic.js';

/** The files of one checkpoint, as names inside the run folder. */
export interface CheckpointFiles { model: string; optimizer: string; best: string }

export interface Sidecar<S = unknown> {
  format: 'medgrad-checkpoint/1';
  architecture: string;
  modelOptions: Record<string, unknown>;
  state: S;
  /** Absent in folders written before checkpoints were versioned (then the fixed names hold). */
  files?: CheckpointFiles;
}

const SIDECAR = 'checkpoint.json';
const BEST = 'best.safetensors';
const LEGACY: CheckpointFiles = { model: 'model.safetensors', optimizer: 'optimizer.safetensors', best: BEST };
const VERSIONED = /^(model|optimizer|best)\.e\d+\.safetensors$/;
const TEMPORARY = /\.tmp-\d+-\d+$/;

export async function saveTensors(path: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  writeFileAtomic(path, encodeSafetensors(await toRaw(tensors), metadata));
}

/** Loads a safetensors file as tensors (owned by the caller). */
export function loadTensors(path: string): Record<string, Tensor> {
  if (!existsSync(path)) throw new Error(`medgrad: checkpoint file ${path} does not exist`);
  return fromRaw(decodeSafetensors(new Uint8Array(readFileSync(path)), path).tensors);
}

/** Whether `dir` holds a committed checkpoint to resume from. */
export function hasCheckpoint(dir: string): boolean { return existsSync(join(dir, SIDECAR)); }

export function writeSidecar(dir: string, sidecar: Sidecar): void {
  writeFileAtomic(join(dir, SIDECAR), JSON.stringify(sidecar, null, 2) + '\n');
}

export function readSidecar<S>(dir: string): Sidecar<S> {
  const file = join(dir, SIDECAR);
  if (!existsSync(file)) throw new Error(`medgrad: ${dir} holds no checkpoint (checkpoint.json is missing)`);
  const s = JSON.parse(readFileSync(file, 'utf8')) as Sidecar<S>;
  if (s.format !== 'medgrad-checkpoint/1') throw new Error(`medgrad: ${file}: unknown checkpoint format '${String(s.format)}'`);
  return s;
}

/** Paths of the committed checkpoint's files. */
export function checkpointFiles(dir: string): CheckpointFiles {
  const f = readSidecar(dir).files ?? LEGACY;
  return { model: join(dir, f.model), optimizer: join(dir, f.optimizer), best: join(dir, f.best) };
}

/**
 * The best epoch's weights of a run folder: the committed checkpoint's, so they always match
 * checkpoint.json (best.safetensors can lag it by one epoch in a run that was killed).
 */
export function bestWeightsFile(dir: string): string {
  return hasCheckpoint(dir) ? checkpointFiles(dir).best : join(dir, BEST);
}

/** Copies the committed best weights to best.safetensors (unless it already holds them). */
export function publishBest(dir: string): void {
  const best = bestWeightsFile(dir);
  const stable = join(dir, BEST);
  if (best !== stable && existsSync(best) && !(existsSync(stable) && readFileSync(stable).equals(readFileSync(best)))) copyFileAtomic(best, stable);
}

export interface CheckpointData {
  epoch: number;
  model: Record<string, Tensor>;
  optimizer: Record<string, Tensor>;
  optimizerStep: number;
  /** This epoch's weights become the best ones. */
  best: boolean;
  sidecar: Omit<Sidecar, 'files'>;
}

/** Writes one epoch's checkpoint as described at the top; see there for what a kill leaves. */
export async function saveCheckpoint(dir: string, c: CheckpointData): Promise<void> {
  const tag = `e${String(c.epoch).padStart(4, '0')}`;
  const previous = hasCheckpoint(dir) ? readSidecar(dir).files : undefined;
  const files: CheckpointFiles = { model: `model.${tag}.safetensors`, optimizer: `optimizer.${tag}.safetensors`, best: previous?.best ?? `best.${tag}.safetensors` };
  await saveTensors(join(dir, files.model), c.model, { epoch: String(c.epoch) });
  await saveTensors(join(dir, files.optimizer), c.optimizer, { step: String(c.optimizerStep) });
  if (c.best || !previous || !existsSync(join(dir, files.best))) {
    files.best = `best.${tag}.safetensors`;
    copyFileAtomic(join(dir, files.model), join(dir, files.best));
  }
  writeSidecar(dir, { ...c.sidecar, files });
  publishBest(dir);
  removeStale(dir, files);
}

/** Removes versioned files the committed checkpoint does not name, and leftover temporaries. */
function removeStale(dir: string, keep: CheckpointFiles): void {
  const named = new Set([keep.model, keep.optimizer, keep.best]);
  for (const f of readdirSync(dir).sort()) {
    if ((VERSIONED.test(f) && !named.has(f)) || TEMPORARY.test(f)) removeFile(join(dir, f));
  }
}
