// Leases: how shards sharing one output folder claim a cell. A lease is a small JSON file
// (owner, host, pid, expiry) created atomically: written whole under a temporary name, then
// hard-linked to its name, which fails when the name is taken, so of several claimants exactly
// one wins and nobody reads a half-written lease. The holder renews it while the cell runs; a
// lease whose expiry has passed, or whose holder is a dead process on this same machine, may be
// taken over. Takeover first renames the stale file to a private name (one rename wins) and
// checks it moved the lease it judged stale, so two late claimants cannot both take it. Expiry
// compares wall clocks of different machines: they must agree to well within the lease time.
import { linkSync, mkdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface LeaseRecord { cell: string; owner: string; host: string; pid: number; pidns: string; token: string; acquired: string; expires: number; ttlSeconds: number }

export interface LeaseOptions {
  /** Lease time; renewed every quarter of it (default MEDGRAD_LEASE_SECONDS, else 300 s). */
  ttlMs?: number;
  /** The clock (ms since the epoch): tests pass a fake one. */
  now?: () => number;
  /** Who holds it, for people reading the lock files (default: the scheduler's task name). */
  owner?: string;
  log?: (line: string) => void;
}

export const DEFAULT_TTL_MS = 300_000;

export function leaseTtlMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.MEDGRAD_LEASE_SECONDS;
  if (v === undefined || v === '') return DEFAULT_TTL_MS;
  const s = Number(v);
  if (!(s > 0)) throw new Error(`medgrad study: MEDGRAD_LEASE_SECONDS must be a positive number of seconds, got '${v}'`);
  return s * 1000;
}

/** The scheduler's name for this task (Slurm job, Kubernetes pod), else host and pid. */
export function defaultOwner(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLURM_JOB_ID) return `slurm job ${env.SLURM_ARRAY_JOB_ID && env.SLURM_ARRAY_TASK_ID ? `${env.SLURM_ARRAY_JOB_ID}_${env.SLURM_ARRAY_TASK_ID}` : env.SLURM_JOB_ID}`;
  if (env.JOB_COMPLETION_INDEX !== undefined) return `kubernetes pod ${env.HOSTNAME ?? hostname()} (index ${env.JOB_COMPLETION_INDEX})`;
  return `${hostname()} pid ${process.pid}`;
}

// The pid namespace tells containers on one host (same host name, own pids) apart.
const PIDNS = (() => { try { return readlinkSync('/proc/self/ns/pid'); } catch { return ''; } })();
const HOST = hostname();

function readLease(path: string): LeaseRecord | null {
  try { return JSON.parse(readFileSync(path, 'utf8')) as LeaseRecord; } catch { return null; }
}

/** A holder known to be gone: a process of this machine (and pid namespace) that no longer exists. */
function holderDead(r: LeaseRecord): boolean {
  if (r.host !== HOST || r.pidns !== PIDNS || r.pid === process.pid) return false;
  try { process.kill(r.pid, 0); return false; } catch (e) { return (e as NodeJS.ErrnoException).code === 'ESRCH'; }
}

/** Whether `r` still holds its cell at time `now`. */
export const leaseLive = (r: LeaseRecord, now: number): boolean => r.expires > now && !holderDead(r);

// Leases this process holds, released if it is asked to stop (scancel sends SIGTERM, then
// SIGKILL after Slurm's KillWait), so that a resubmitted task can claim them at once.
const held = new Set<Lease>();
const onSignal = (sig: NodeJS.Signals) => {
  const cells = [...held].map((l) => l.record.cell);
  for (const l of [...held]) l.release();
  console.error(`medgrad: ${sig}: released the lease(s) of ${cells.join(', ')} for another task to take; stopping`);
  process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
};
function track(l: Lease, on: boolean): void {
  const before = held.size;
  if (on) held.add(l); else held.delete(l);
  if (before === 0 && held.size > 0) { process.on('SIGTERM', onSignal); process.on('SIGINT', onSignal); }
  if (before > 0 && held.size === 0) { process.off('SIGTERM', onSignal); process.off('SIGINT', onSignal); }
}

/** Thrown by Lease.assertHeld: another task took the lease over while this one stalled. */
export class LeaseLostError extends Error {
  constructor(readonly record: LeaseRecord, readonly taker: LeaseRecord | null) {
    super(`lost the lease of ${record.cell} to ${taker ? taker.owner : 'another task'} (this process stalled past its expiry)`);
    this.name = 'LeaseLostError';
  }
}

export class Lease {
  /** Set when a renewal found the lease gone or taken: someone judged this holder dead. */
  lost = false;
  private timer: NodeJS.Timeout | null = null;
  private released = false;
  /** Who holds the lease now, once a renewal found it lost (null: the file was gone). */
  private taker: LeaseRecord | null = null;

  constructor(readonly path: string, readonly record: LeaseRecord, private readonly o: Required<Pick<LeaseOptions, 'ttlMs' | 'now'>> & LeaseOptions) {
    this.timer = setInterval(() => this.renew(), Math.max(1, o.ttlMs / 4));
    this.timer.unref();
    track(this, true);
  }

  /** Pushes the expiry to now + ttl if this process still holds the lease; false if it does not. */
  renew(): boolean {
    if (this.released || this.lost) return false;
    const cur = readLease(this.path);
    if (!cur || cur.token !== this.record.token) {
      this.lost = true;
      this.taker = cur;
      this.o.log?.(`WARNING lease ${this.record.cell} was taken over${cur ? ` by ${cur.owner}` : ''} (this process stalled past its expiry)`);
      this.stop();
      return false;
    }
    this.record.expires = this.o.now() + this.o.ttlMs;
    const tmp = `${this.path}.${this.record.token}.renew`;
    writeFileSync(tmp, JSON.stringify(this.record) + '\n');
    renameSync(tmp, this.path);
    return true;
  }

  /**
   * Checks now, by reading the lease file (not waiting for the renewal timer, which a stalled
   * process runs late), that this process still holds the lease, and renews it; throws
   * LeaseLostError if another task took it over. Call it before writing into the cell's files.
   */
  assertHeld(): void {
    if (this.released) throw new Error(`medgrad study: the lease of ${this.record.cell} was released; nothing may be written for it`);
    if (!this.renew()) throw new LeaseLostError(this.record, this.taker);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.stop();
    if (readLease(this.path)?.token === this.record.token) rmSync(this.path, { force: true });
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    track(this, false);
  }
}

export type Claim = { lease: Lease; holder?: undefined; tookOver?: LeaseRecord } | { lease?: undefined; holder: LeaseRecord; tookOver?: undefined };

/**
 * Claims the lease at `path` for `cell`: the lease, or the live record of whoever holds it.
 * A stale lease (expired, or of a dead process here) is taken over.
 */
export function claim(path: string, cell: string, opts: LeaseOptions = {}): Claim {
  const o = { ...opts, ttlMs: opts.ttlMs ?? leaseTtlMs(), now: opts.now ?? Date.now };
  mkdirSync(dirname(path), { recursive: true });
  const token = randomBytes(8).toString('hex');
  const now = o.now();
  const record: LeaseRecord = { cell, owner: o.owner ?? defaultOwner(), host: HOST, pid: process.pid, pidns: PIDNS, token, acquired: new Date(now).toISOString(), expires: now + o.ttlMs, ttlSeconds: o.ttlMs / 1000 };
  const tmp = `${path}.${token}.new`;
  writeFileSync(tmp, JSON.stringify(record) + '\n');
  let tookOver: LeaseRecord | undefined;
  try {
    for (let attempt = 0; attempt < 8; attempt++) {
      try {
        linkSync(tmp, path);
        return { lease: new Lease(path, record, o), tookOver };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const cur = readLease(path);
      if (!cur) continue; // released meanwhile (or being replaced): try again
      if (leaseLive(cur, o.now())) return { holder: cur };
      const aside = `${path}.${token}.stale`;
      try { renameSync(path, aside); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // another claimant moved it first
        throw e;
      }
      const moved = readLease(aside);
      if (moved && (moved.token !== cur.token || moved.expires !== cur.expires)) {
        // A fresh lease replaced the stale one between our read and our rename, or its holder
        // woke up and renewed it: put it back.
        try { linkSync(aside, path); } catch { /* a third claimant won meanwhile; the moved holder finds out when it renews */ }
        rmSync(aside, { force: true });
        return { holder: moved };
      }
      rmSync(aside, { force: true });
      tookOver = cur;
    }
    throw new Error(`medgrad study: could not claim ${path}: it keeps changing (8 attempts)`);
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Runs `fn` holding the lease at `path`, waiting (polling every `pollMs`) while another holds it. */
export async function withLease<T>(path: string, cell: string, fn: () => Promise<T> | T, opts: LeaseOptions & { pollMs?: number } = {}): Promise<T> {
  for (;;) {
    const c = claim(path, cell, opts);
    if (c.lease) {
      try { return await fn(); } finally { c.lease.release(); }
    }
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 200));
  }
}
