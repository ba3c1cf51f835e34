// Atomic file operations: write (or copy) to a temporary file beside the target, then rename
// over it, so a killed process leaves either the old file or the new one, never a truncated
// one. Checkpoints do every file operation through these, which lets a test stop after any one.
import { copyFileSync, linkSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

const tmpName = (path: string) => `${path}.tmp-${process.pid}-${Date.now()}`;

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = tmpName(path);
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/**
 * Creates `path` with its whole content only if it does not exist yet (a hard link of a finished
 * temporary file, which fails when the name is taken): of several processes racing to create
 * the same file exactly one wins, and no reader ever sees it partly written. False when it
 * existed (the file is then left as it was).
 */
export function createFileExclusive(path: string, data: string | Uint8Array): boolean {
  mkdirSync(dirname(path), { recursive: true });
  // Random too: machines sharing the folder may run processes of the same pid (pods).
  const tmp = `${tmpName(path)}-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, data);
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

export function copyFileAtomic(src: string, dst: string): void {
  const tmp = tmpName(dst);
  copyFileSync(src, tmp);
  renameSync(tmp, dst);
}

export function removeFile(path: string): void { rmSync(path, { force: true }); }
