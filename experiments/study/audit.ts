// Whether a (sharded) study's output folder holds every cell exactly once: each expected cell
// has its result file, cells.log records each finished cell exactly once (a cell finished
// twice would appear twice), nothing unexpected is there, and no lease is left behind.
// A finish counts when its cells.log line carries the token its cell file repeats; lines no file
// confirms are finishes that never landed (a task killed between its line and its file, or one
// that lost the race to create the file), listed apart.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StudyConfig } from './config.js';
import { cellId, FINISH_TOKEN, studyUnits } from './runner.js';
import { transferAttack, transferId } from './transfer.js';

/** `finishedBy`: per cell id, the owner of each finish cells.log records; `unconfirmed`: lines (id and owner) of finishes that never landed. */
export interface Audit { expected: string[]; missing: string[]; extra: string[]; finishedBy: Map<string, string[]>; notOnce: string[]; unconfirmed: string[]; locks: string[]; ok: boolean }

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
  const tokens = new Map(files.map((id) => [id, (JSON.parse(readFileSync(join(dir, `${id}.json`), 'utf8')) as Record<string, unknown>)[FINISH_TOKEN]]));
  const finishedBy = new Map<string, string[]>();
  const unconfirmed: string[] = [];
  const log = join(out, 'cells.log');
  for (const line of existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : []) {
    // time, id, token, owner (folders written before the token: time, id, owner; every line counts)
    const cols = line.split('\t');
    const [id = '', token, owner = ''] = cols.length >= 4 ? cols.slice(1) : [cols[1], undefined, cols[2]];
    if (token !== undefined && tokens.get(id) !== token) { unconfirmed.push(`${id} (${owner})`); continue; }
    finishedBy.set(id, [...(finishedBy.get(id) ?? []), owner]);
  }
  const missing = expected.filter((id) => !files.includes(id));
  const extra = [...new Set([...files, ...finishedBy.keys()])].filter((id) => !expected.includes(id));
  const notOnce = expected.filter((id) => finishedBy.get(id)?.length !== 1);
  const locksDir = join(out, 'locks');
  const locks = existsSync(locksDir) ? readdirSync(locksDir) : [];
  return { expected, missing, extra, finishedBy, notOnce, unconfirmed, locks, ok: !missing.length && !extra.length && !notOnce.length && !locks.length };
}
