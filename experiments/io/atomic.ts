// Atomic file operations: write (or copy) to a temporary file beside the target, then rename
// over it, so a killed process leaves either the old file or the new one, never a truncated
// one. Checkpoints do every file operation through these, which lets a test stop after any one.
import { copyFileSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const tmpName = (path: string) => `${path}.tmp-${process.pid}-${Date.now()}`;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function copyFileAtomic(src: string, dst: string): void {
  const tmp = tmpName(dst);
  copyFileSync(src, tmp);
  renameSync(tmp, dst);
}

export function removeFile(path: string): void { rmSync(path, { force: true }); }
