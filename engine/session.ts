// Process-wide session functions: attaching a device, syncing, profiling and debug mode.
import { Runtime } from './kernels/runtime.js';
import { hasRuntime, runtime, setRuntime } from './context.js';
import type { Device } from './device/device.js';
import { Profiler, type ProfileReport } from './profiler/profiler.js';

/** Makes `device` the engine's device (init() does this). */
export function useDevice(device: Device): Device {
  if (hasRuntime()) throw new Error('medgrad: a device is already attached; init() runs once per process');
  setRuntime(new Runtime(device));
  if (typeof process !== 'undefined' && process.env?.MEDGRAD_DEBUG === '1') setDebug(true);
  return device;
}

export function getDevice(): Device { return runtime().device; }

/** Waits until all submitted GPU work is done; throws any GPU error it raised. */
export function sync(): Promise<void> { return runtime().sync(); }

/**
 * Submits the work recorded so far and returns a promise for its completion, without waiting.
 * A loop that awaits the previous step's fence keeps one step in flight: the CPU prepares the
 * next batch while the GPU runs the current one, and never runs further ahead than that.
 */
export function fence(): Promise<void> { return runtime().fence(); }

/** In debug mode each op is submitted alone so a GPU error names exactly that op (slow). */
export function setDebug(on: boolean): void { runtime().debug = on; }

/** Frees the GPU buffers held for reuse by the pool. */
export function emptyCache(): void {
  const rt = runtime();
  // Commands still in the open encoder may use pooled buffers (a tensor disposed after the op
  // that read it was recorded): submit them first, since destroy() only waits for submitted work.
  rt.flush();
  rt.clearBindGroups();
  rt.pool.emptyCache();
}

/** Number of kernel dispatches recorded since the device was attached. */
export function dispatchCount(): number { return runtime().dispatchCount; }

/**
 * Runs fn with per-kernel GPU timing and returns the report. With `timestamp-query` the
 * times are GPU timestamps around each dispatch; otherwise queue-completion times.
 */
export async function profile(fn: () => unknown | Promise<unknown>): Promise<ProfileReport> {
  const rt = runtime();
  if (rt.profiler) throw new Error('medgrad: profile() calls cannot nest');
  await rt.sync();
  const prof = new Profiler(rt.device.gpu, rt.device.hasTimestamps);
  rt.profiler = prof;
  try {
    await fn();
    await rt.sync();
  } finally {
    rt.profiler = null;
  }
  return prof.finish();
}
