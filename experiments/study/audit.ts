// Whether a (sharded) study's output folder holds every cell exactly once: each expected cell
// has its result file, cells.log records each finished cell exactly once (a cell finished
// twice would appear twice), nothing unexpected is there, and no lease is left behind.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StudyConfig } from './config.js';
import { cellId, studyUnits } from './runner.js';
import { transferAttack, transferId } from './transfer.js';

/** `finishedBy`: per cell id, the owner of each finish cells.log records. */
export interface Audit { expected: string[]; missing: string[]; extra: string[]; finishedBy: Map<string, string[]>; notOnce: string[]; locks: string[]; ok: boolean }

/** The id of every cell the study has, in the order a single process runs them. */
export function expectedCells(c: StudyConfig): string[] {
  const cells = studyUnits(c).flatMap((u) => u.regimes.flatMap((r) => [cellId(u, r, 'train'), cellId(u, r, 'attack')]));
  const transfers = transferAttack(c) && c.models.length > 1 ? c.datasets.flatMap((d) => c.seeds.map((s) => transferId(d.name, s))) : [];
  return [...cells, ...transfers];
}

export function auditCells(c: StudyConfig, out: string): Audit {
  const expected = expectedCells(c);
  const dir = join(out, 'cells');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)) : [];
  const finishedBy = new Map<string, string[]>();
  const log = join(out, 'cells.log');
  for (const line of existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []) {
    const [, id = '', owner = ''] = line.split('\t');
    finishedBy.set(id, [...(finishedBy.get(id) ?? []), owner]);
  }
  const missing = expected.filter((id) => !files.includes(id));
  const extra = [...new Set([...files, ...finishedBy.keys()])].filter((id) => !expected.includes(id));
  const notOnce = expected.filter((id) => finishedBy.get(id)?.length !== 1);
  const locksDir = join(out, 'locks');
  const locks = existsSync(locksDir) ? readdirSync(locksDir) : [];
  return { expected, missing, extra, finishedBy, notOnce, locks, ok: !missing.length && !extra.length && !notOnce.length && !locks.length };
}
