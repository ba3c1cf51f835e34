// The current engine's methods as functions (PyTorch's torch.cuda.synchronize() style), and
// attaching a device: init() (node.ts / browser.ts) calls attach().
import { Engine, type MemoryInfo, type TuneStore } from './engine.js';
import { currentEngine, engine, setEngine } from './context.js';
import type { Device } from './device/device.js';
import type { ProfileReport } from './profiler/profiler.js';

/**
 * The device of the current engine, or null if init() must make one: none yet, or the last one
 * was lost (then the caller is told, since the tensors made on it are gone with it).
 */
export function usableDevice(): Device | null {
  const e = currentEngine();
  if (!e) return null;
  if (!e.lost) return e.device;
  console.warn(`medgrad: the GPU device was lost (${e.device.lost}); init() is creating a new engine on a new device. Tensors and models made before cannot be used: recreate them.`);
  setEngine(null);
  return null;
}

/** Makes a new engine on `device` and makes it current. */
export function attach(device: Device, tuneStore: TuneStore | null = null): Engine {
  if (currentEngine() && !currentEngine()!.lost) throw new Error('medgrad: a device is already attached; init() returns it');
  const e = new Engine(device, tuneStore);
  setEngine(e);
  return e;
}

/** The current engine (init() makes it). */
export function getEngine(): Engine { return engine(); }
export function getDevice(): Device { return engine().device; }
export function sync(): Promise<void> { return engine().sync(); }
export function fence(): Promise<void> { return engine().fence(); }
/** In debug mode each op is submitted alone so a GPU error names exactly that op (slow). */
export function setDebug(on: boolean): void { engine().runtime.debug = on; }
export function emptyCache(): void { engine().emptyCache(); }
/** Number of kernel dispatches recorded since the device was attached. */
export function dispatchCount(): number { return engine().runtime.dispatchCount; }
export function memory(): MemoryInfo { return engine().memory(); }
export function profile(fn: () => unknown | Promise<unknown>): Promise<ProfileReport> { return engine().profile(fn); }
