// Sharding on a scheduler: `--shard auto` from Slurm's and Kubernetes' variables; cell leases
// (atomic creation, renewal, expiry on a fake clock, takeover from a killed holder, release on
// SIGTERM, one winner among racing claimants); and whole tiny studies: two processes running
// the same study in one folder at once, and a study killed while it holds a cell next to a
// lease of another machine, resumed: every cell finished exactly once, results.csv identical.
import { afterAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveShard } from '../experiments/study/shard.js';
import { claim, leaseLive, LeaseLostError, type LeaseRecord } from '../experiments/study/lease.js';
import { createFileExclusive, writeFileAtomic } from '../experiments/io/atomic.js';
import { parseStudyConfig } from '../experiments/study/config.js';
import { auditCells } from '../experiments/study/audit.js';
import { runStudy } from '../experiments/study/runner.js';
import * as E from '../engine/node.js';
import { node, ROOT, SMALL, study } from './helpers/study-run.js';

const dir = mkdtempSync(join(tmpdir(), 'medgrad-shard-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--shard auto', () => {
  const slurm = (id: number, min: number, max: number, extra: Record<string, string> = {}) =>
    ({ SLURM_ARRAY_TASK_ID: String(id), SLURM_ARRAY_TASK_MIN: String(min), SLURM_ARRAY_TASK_MAX: String(max), ...extra });

  it('reads a Slurm array: any base, step, COUNT; a given count makes task ids the shard numbers', () => {
    expect(resolveShard('auto', slurm(1, 1, 3))).toMatchObject({ index: 1, count: 3 });
    expect(resolveShard('auto', slurm(7, 0, 7))).toMatchObject({ index: 8, count: 8 });
    expect(resolveShard('auto', slurm(5, 1, 7, { SLURM_ARRAY_TASK_STEP: '2', SLURM_ARRAY_TASK_COUNT: '4' }))).toMatchObject({ index: 3, count: 4 });
    expect(resolveShard('auto', { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '3', SLURM_ARRAY_TASK_COUNT: '5' })).toMatchObject({ index: 2, count: 5 });
    // A resubmitted single task (--array=2) keeps its place with the count given.
    expect(resolveShard('auto', slurm(2, 2, 2, { MEDGRAD_SHARD_COUNT: '3' }))).toMatchObject({ index: 2, count: 3 });
    expect(resolveShard('auto/3', slurm(2, 2, 2))).toMatchObject({ index: 2, count: 3 });
    expect(resolveShard('auto', slurm(2, 2, 2))).toMatchObject({ index: 1, count: 1 });
    expect(() => resolveShard('auto/3', slurm(0, 0, 2))).toThrow(/task id 0 must be a shard number 1\.\.3 \(submit with --array=1-3\)/);
    expect(() => resolveShard('auto', slurm(3, 1, 8, { SLURM_ARRAY_TASK_COUNT: '3' }))).toThrow(/not a range \(3 tasks between 1 and 8\)/);
    expect(() => resolveShard('auto', { SLURM_ARRAY_TASK_ID: '3' })).toThrow(/SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_MIN/);
    expect(() => resolveShard('auto/4', slurm(1, 1, 4, { MEDGRAD_SHARD_COUNT: '3' }))).toThrow(/disagrees with MEDGRAD_SHARD_COUNT=3/);
  });

  it('reads a Kubernetes Indexed Job (0-based) with the count given, and says what is missing', () => {
    expect(resolveShard('auto/3', { JOB_COMPLETION_INDEX: '0' })).toMatchObject({ index: 1, count: 3 });
    expect(resolveShard('auto', { JOB_COMPLETION_INDEX: '2', MEDGRAD_SHARD_COUNT: '3' })).toMatchObject({ index: 3, count: 3, from: 'Kubernetes completion index 2 of 3' });
    expect(() => resolveShard('auto', { JOB_COMPLETION_INDEX: '1' })).toThrow(/needs the count: --shard auto\/N or MEDGRAD_SHARD_COUNT=N/);
    expect(() => resolveShard('auto/2', { JOB_COMPLETION_INDEX: '2' })).toThrow(/JOB_COMPLETION_INDEX 2 is not below the count 2/);
    expect(() => resolveShard('auto', {})).toThrow(/--shard auto found no scheduler task: .*SLURM_ARRAY_TASK_ID.*JOB_COMPLETION_INDEX.*give --shard i\/n/);
    expect(() => resolveShard('auto', { MEDGRAD_SHARD_COUNT: 'x', JOB_COMPLETION_INDEX: '0' })).toThrow(/MEDGRAD_SHARD_COUNT must be a positive integer, got 'x'/);
    expect(resolveShard('2/5', { JOB_COMPLETION_INDEX: '0' })).toMatchObject({ index: 2, count: 5 });
    expect(() => resolveShard('auto/x', {})).toThrow(/--shard must be i\/n/);
  });
});

/**
 * A node process that claims `lock` (lease `ttl` ms) at time `at` (spinning until then, so that
 * racers claim within a millisecond or so), says "held" (or "busy") and waits to be killed.
 */
function holder(lock: string, ttl: number, at = 0) {
  const code = `import { claim } from ${JSON.stringify(join(ROOT, 'experiments/study/lease.ts'))};
    while (Date.now() < ${at}) {}
    const c = claim(${JSON.stringify(lock)}, 'cell', { ttlMs: ${ttl}, owner: 'child' });
    console.log(c.lease ? 'held' : 'busy'); setInterval(() => {}, 1000);`;
  const h = node(['--import', 'tsx', '--input-type=module', '-e', code]);
  const ready = new Promise<string>((r) => { const t = setInterval(() => { if (/held|busy|Error/.test(h.log())) { clearInterval(t); r(h.log()); } }, 20); });
  return { p: h.p, ready, exit: h.done.then((d) => d.code), out: h.log };
}

describe('leases', () => {
  it('one holder at a time; renewal, expiry on a fake clock, takeover, loss detected by the old holder', () => {
    let t = 1_000_000;
    const now = () => t;
    const lock = join(dir, 'l1', 'a.lock');
    const a = claim(lock, 'a', { ttlMs: 1000, now, owner: 'A' });
    expect(a.lease).toBeDefined();
    const rec = JSON.parse(readFileSync(lock, 'utf8')) as LeaseRecord;
    expect(rec).toMatchObject({ cell: 'a', owner: 'A', pid: process.pid, expires: t + 1000, ttlSeconds: 1 });
    expect(typeof rec.host).toBe('string');
    const b = claim(lock, 'a', { ttlMs: 1000, now, owner: 'B' });
    expect(b.holder?.owner).toBe('A');
    t += 900;
    expect(a.lease!.renew()).toBe(true); // now expires at t + 1000
    t += 900;
    expect(claim(lock, 'a', { ttlMs: 1000, now, owner: 'B' }).holder?.owner).toBe('A');
    t += 200; // past the renewed expiry: B takes over, and A finds out at its next renewal
    const b2 = claim(lock, 'a', { ttlMs: 1000, now, owner: 'B' });
    expect(b2.lease).toBeDefined();
    expect(b2.tookOver?.owner).toBe('A');
    expect(() => a.lease!.assertHeld()).toThrow(LeaseLostError);
    expect(() => a.lease!.assertHeld()).toThrow(/lost the lease of a to B/);
    expect(a.lease!.renew()).toBe(false);
    expect(a.lease!.lost).toBe(true);
    expect(() => b2.lease!.assertHeld()).not.toThrow();
    a.lease!.release(); // must not remove B's lease
    expect(JSON.parse(readFileSync(lock, 'utf8')).owner).toBe('B');
    b2.lease!.release();
    expect(existsSync(lock)).toBe(false);
    expect(readdirSync(join(dir, 'l1'))).toEqual([]); // no temporary files left
  });

  it('renews on its own while held (a tiny lease outlives many of its lease times)', async () => {
    const lock = join(dir, 'l2', 'a.lock');
    const a = claim(lock, 'a', { ttlMs: 80 });
    await new Promise((r) => setTimeout(r, 400));
    expect(claim(lock, 'a', { ttlMs: 80 }).holder?.token).toBe(a.lease!.record.token);
    expect(leaseLive(JSON.parse(readFileSync(lock, 'utf8')), Date.now())).toBe(true);
    a.lease!.release();
    expect(claim(lock, 'a', { ttlMs: 80 }).lease).toBeDefined();
  });

  it('takes over at once from a killed holder on this machine; waits for expiry on another machine', async () => {
    const lock = join(dir, 'l3', 'a.lock');
    const h = holder(lock, 3_600_000);
    expect(await h.ready).toMatch(/held/);
    expect(claim(lock, 'a').holder?.owner).toBe('child');
    h.p.kill('SIGKILL');
    await h.exit;
    const c = claim(lock, 'a', { owner: 'me' });
    expect(c.tookOver?.owner).toBe('child');
    c.lease!.release();
    // A lease of another machine cannot be checked for a live process: only its expiry counts.
    let t = 5_000;
    const foreign: LeaseRecord = { cell: 'a', owner: 'far', host: 'elsewhere', pid: 1, pidns: '', token: 'f', acquired: '', expires: 6_000, ttlSeconds: 1 };
    writeFileSync(lock, JSON.stringify(foreign));
    expect(claim(lock, 'a', { now: () => t }).holder?.owner).toBe('far');
    t = 6_001;
    const d = claim(lock, 'a', { now: () => t });
    expect(d.tookOver?.owner).toBe('far');
    d.lease!.release();
  });

  it('releases its leases on SIGTERM (scancel) and exits 143', async () => {
    const lock = join(dir, 'l4', 'a.lock');
    const h = holder(lock, 3_600_000);
    expect(await h.ready).toMatch(/held/);
    h.p.kill('SIGTERM');
    expect(await h.exit).toBe(143);
    expect(h.out()).toMatch(/SIGTERM: released the lease\(s\) of cell/);
    expect(existsSync(lock)).toBe(false);
  });

  it('lets exactly one of several processes racing for a stale lease win, and one creator of a file', async () => {
    const lock = join(dir, 'l5', 'a.lock');
    const stale: LeaseRecord = { cell: 'a', owner: 'gone', host: 'elsewhere', pid: 1, pidns: '', token: 's', acquired: '', expires: 0, ttlSeconds: 1 };
    createFileExclusive(lock, JSON.stringify(stale));
    const at = Date.now() + 8000; // every racer started by then, on a loaded machine too
    const racers = Array.from({ length: 5 }, () => holder(lock, 3_600_000, at));
    const said = await Promise.all(racers.map((r) => r.ready));
    for (const r of racers) { r.p.kill('SIGKILL'); await r.exit; }
    expect(said.filter((s) => /held/.test(s))).toHaveLength(1);
    expect(said.filter((s) => /busy/.test(s))).toHaveLength(4);
    const f = join(dir, 'l5', 'x.json');
    expect(createFileExclusive(f, 'first')).toBe(true);
    expect(createFileExclusive(f, 'second')).toBe(false);
    expect(readFileSync(f, 'utf8')).toBe('first');
  });
});

describe('studies sharing one folder', () => {
  const cfg = join(dir, 'small.json');
  writeFileSync(cfg, JSON.stringify(SMALL));
  const config = parseStudyConfig(SMALL);
  const ref = join(dir, 'ref');

  it('runs the reference in one process', async () => {
    const r = await study(ref, cfg).done;
    expect(r.code, r.log).toBe(0);
    expect(auditCells(config, ref).ok).toBe(true);
  }, 240_000);

  it('a task killed between its cells.log line and its cell file: the line is not counted, and the cell runs again', async () => {
    const out = join(dir, 'gap');
    cpSync(ref, out, { recursive: true });
    const lines = readFileSync(join(out, 'cells.log'), 'utf8').trim().split('\n');
    const last = lines.filter((l) => /\.attack\t/.test(l)).at(-1)!;
    const id = last.split('\t')[1]!;
    rmSync(join(out, 'cells', `${id}.json`)); // as if killed right after appending the line
    const gap = auditCells(config, out);
    expect(gap).toMatchObject({ missing: [id], notOnce: [id], ok: false });
    expect(gap.unconfirmed).toEqual([`${id} (${last.split('\t').at(-1)})`]);
    const r = await study(out, cfg).done;
    expect(r.code, r.log).toBe(0);
    const [, doneBefore, cells] = /(\d+) of (\d+) cells already done/.exec(r.log)!;
    expect(Number(doneBefore)).toBe(Number(cells) - 1);
    expect(r.log).toContain(`[${id}] attacking`);
    const audit = auditCells(config, out);
    expect(audit).toMatchObject({ missing: [], extra: [], notOnce: [], locks: [], ok: true });
    expect(audit.unconfirmed).toHaveLength(1);
    expect(readFileSync(join(out, 'results.csv'), 'utf8')).toBe(readFileSync(join(ref, 'results.csv'), 'utf8'));
    // A folder written before the token (time, id, owner): every line counts.
    writeFileSync(join(out, 'cells.log'), lines.map((l) => { const c = l.split('\t'); return [c[0], c[1], c[3]].join('\t'); }).join('\n') + '\n');
    for (const f of readdirSync(join(out, 'cells'))) {
      const { finishToken: _t, ...cell } = JSON.parse(readFileSync(join(out, 'cells', f), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(out, 'cells', f), JSON.stringify(cell));
    }
    expect(auditCells(config, out)).toMatchObject({ notOnce: [], unconfirmed: [], ok: true });
  }, 240_000);

  it('a task whose lease is taken over while it trains stops writing, waits for the taker, and never attacks a half-trained model', async () => {
    await E.init();
    const one = parseStudyConfig({ ...SMALL, name: 'one', models: ['resnet8'] });
    const out = join(dir, 'stolen');
    const id = 'chest.resnet8.s5.standard.train';
    const lines: string[] = [];
    let stolen = false;
    const log = (l: string) => {
      lines.push(l);
      // Another machine's task takes the lease over as training starts (this task "stalled").
      if (!stolen && l.startsWith(`[${id}] training`)) {
        stolen = true;
        writeFileAtomic(join(out, 'locks', `${id}.lock`), JSON.stringify({ cell: id, owner: 'far away', host: 'elsewhere', pid: 1, pidns: '', token: 'far', acquired: '', expires: Date.now() + 1500, ttlSeconds: 1.5 } satisfies LeaseRecord));
      }
    };
    await runStudy(one, out, { log, lease: { ttlMs: 60_000, pollMs: 100, owner: 'me' } });
    const text = lines.join('\n');
    expect(text).toMatch(new RegExp(`\\[${id}\\] lost the lease of ${id} to far away .*: leaving the cell to it`));
    expect(text).toMatch(/waiting for cells other tasks hold: chest\.resnet8\.s5\.standard\.train \(far away/);
    expect(text).toMatch(new RegExp(`\\[${id}\\] taking over from far away`));
    // Nothing was written for the cell before the lease was lost: the taker starts afresh.
    expect(lines.filter((l) => l.startsWith(`[${id}] training`))).toHaveLength(2);
    expect(text).not.toMatch(/resuming/);
    const log2 = readFileSync(join(out, 'cells.log'), 'utf8').trim().split('\n').map((l) => l.split('\t')[1]);
    expect(log2).toEqual([id, 'chest.resnet8.s5.standard.attack']);
    expect(auditCells(one, out)).toMatchObject({ missing: [], notOnce: [], locks: [], ok: true });
  }, 240_000);

  it('two processes on the whole study at once: no cell twice, the same results.csv', async () => {
    const out = join(dir, 'two');
    // Leases long enough to outlast the event loop's pauses (shader compilation blocks it for
    // seconds here): then no cell is even computed twice. (With 1 s leases they are, by a
    // stalled holder and its taker, and still finished once: the exclusive creation.)
    const [a, b] = await Promise.all([study(out, cfg, { MEDGRAD_LEASE_SECONDS: '30' }).done, study(out, cfg, { MEDGRAD_LEASE_SECONDS: '30' }).done]);
    expect(a.code, a.log).toBe(0);
    expect(b.code, b.log).toBe(0);
    const audit = auditCells(config, out);
    expect(audit, JSON.stringify([...audit.finishedBy])).toMatchObject({ missing: [], extra: [], notOnce: [], locks: [] });
    // They met: both finished cells, or one waited for a cell the other held.
    const owners = new Set(readFileSync(join(out, 'cells.log'), 'utf8').trim().split('\n').map((l) => l.split('\t').at(-1)));
    expect(owners.size === 2 || /waiting for cells other tasks hold/.test(a.log + b.log), a.log + b.log).toBe(true);
    expect(a.log + b.log).not.toMatch(/taking over|finished by another task|WARNING lease/);
    expect(readFileSync(join(out, 'results.csv'), 'utf8')).toBe(readFileSync(join(ref, 'results.csv'), 'utf8'));
  }, 240_000);

  it('a study killed while it holds a cell, next to a live lease of another machine, resumes by taking both over', async () => {
    const out = join(dir, 'killed');
    const s = study(out, cfg, { MEDGRAD_LEASE_SECONDS: '2' });
    const lockDir = join(out, 'locks');
    const held = () => (existsSync(lockDir) ? readdirSync(lockDir).filter((f) => /\.attack\.lock$/.test(f)) : []);
    const t0 = Date.now();
    while (!held().length && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 10));
    s.p.kill('SIGKILL');
    await s.done;
    expect(held()).toHaveLength(1);
    // Another machine's task holds a cell not started yet; its lease runs out only once the
    // resumed run has done the rest and waits for it (no race with the machine's load).
    const train20 = 'chest.resnet20.s5.standard.train';
    const far = (expires: number): string => JSON.stringify({ cell: train20, owner: 'far away', host: 'elsewhere', pid: 1, pidns: '', token: 'far', acquired: '', expires, ttlSeconds: 600 } satisfies LeaseRecord);
    expect(existsSync(join(out, 'cells', `${train20}.json`))).toBe(false);
    writeFileAtomic(join(lockDir, `${train20}.lock`), far(Date.now() + 600_000));
    const resumed = study(out, cfg, { MEDGRAD_LEASE_SECONDS: '2' });
    const t1 = Date.now();
    while (!/waiting for cells other tasks hold/.test(resumed.log()) && Date.now() - t1 < 120_000) await new Promise((r) => setTimeout(r, 50));
    writeFileAtomic(join(lockDir, `${train20}.lock`), far(Date.now() - 1));
    const r = await resumed.done;
    expect(r.code, r.log).toBe(0);
    expect(r.log).toMatch(/taking over from .* pid \d+ \(lease expired at .*, or its process is gone\)/);
    expect(r.log).toMatch(/waiting for cells other tasks hold: chest\.resnet20\.s5\.standard\.train \(far away, lease until/);
    expect(r.log).toMatch(/\[chest\.resnet20\.s5\.standard\.train\] taking over from far away/);
    expect(auditCells(config, out)).toMatchObject({ missing: [], extra: [], notOnce: [], locks: [] });
    expect(readFileSync(join(out, 'results.csv'), 'utf8')).toBe(readFileSync(join(ref, 'results.csv'), 'utf8'));
  }, 240_000);
});
