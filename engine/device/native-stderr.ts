// Dawn logs some warnings from native code straight to file descriptor 2, out of reach of any
// JavaScript hook. To drop the harmless ones, fd 2 points at a temporary file while a synchronous
// native call runs; then stderr is put back and every other line written to it. Node has no dup2,
// so fd 2 is closed and reopened (POSIX gives the lowest free descriptor, 2) from /proc/self/fd,
// hence Linux only; elsewhere the call runs unfiltered.
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STDERR = 2;

/** Runs `fn` (synchronous native work) and drops the lines it prints on stderr that match `drop`. */
export function filterNativeStderr<T>(fn: () => T, drop: RegExp): T {
  const stderr = process.platform === 'linux' ? reopenableStderr() : null;
  if (stderr === null) return fn();
  const capturePath = join(tmpdir(), `medgrad-stderr-${process.pid}-${Date.now()}`);
  closeSync(STDERR);
  let capture = -1;
  try {
    capture = openSync(capturePath, 'wx+', 0o600); // the lowest free descriptor: 2
    return fn();
  } finally {
    if (capture >= 0) closeSync(capture);
    openSync(`/proc/self/fd/${stderr}`, 'a'); // stderr again, on the freed descriptor 2
    closeSync(stderr);
    if (capture >= 0) {
      const kept = readFileSync(capturePath, 'utf8').split('\n').filter((l) => l && !drop.test(l));
      unlinkSync(capturePath);
      if (kept.length) writeSync(STDERR, kept.join('\n') + '\n');
    }
  }
}

/**
 * A descriptor that reopens, through /proc/self/fd, as this process's stderr; null where there is
 * none. A tty, a pipe, /dev/null or a file opened for appending reopens as itself. A socket (what
 * Node gives the children it spawns with piped stdio, test workers among them) cannot be reopened,
 * and a file written at an offset would, reopened, stop sharing that offset with stdout under
 * `> log 2>&1`. For those, a `cat` child inherits the stream itself and copies a FIFO into it for
 * the rest of the process's life; the FIFO is what reopens.
 */
function reopenableStderr(): number | null {
  try {
    // fd 0 and 1 must be taken, or closing 2 would not make it the lowest free descriptor.
    fstatSync(0);
    fstatSync(1);
    const s = fstatSync(STDERR);
    if (s.isCharacterDevice() || s.isFIFO() || (s.isFile() && appending())) return openSync(`/proc/self/fd/${STDERR}`, 'a');
    return relayStderr();
  } catch {
    return null;
  }
}

function appending(): boolean {
  const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${STDERR}`, 'utf8'))?.[1];
  return flags !== undefined && (parseInt(flags, 8) & constants.O_APPEND) !== 0;
}

/** Starts the `cat` relay and returns the FIFO's write end, or null if it does not come up. */
function relayStderr(): number | null {
  const dir = mkdtempSync(join(tmpdir(), 'medgrad-stderr-'));
  const fifo = join(dir, 'fifo');
  try {
    execFileSync('mkfifo', ['-m', '600', fifo]);
    // Its own process group, so a Ctrl-C meant for this process leaves the relay to drain.
    const relay = spawn('cat', [fifo], { stdio: ['ignore', STDERR, 'ignore'], detached: true });
    relay.unref();
    relay.on('error', () => {}); // no `cat`: the wait below times out and stderr stays as it was
    // Opening a FIFO's write end without blocking fails until a reader has it open.
    const until = Date.now() + 5000, pause = new Int32Array(new SharedArrayBuffer(4));
    while (Date.now() < until) {
      try {
        return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
      } catch {
        Atomics.wait(pause, 0, 0, 5);
      }
    }
    relay.kill();
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true }); // open ends outlive the name
  }
}
