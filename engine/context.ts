// The process's current device and runtime. init() (node.ts / browser.ts) sets it.
import type { Runtime } from './kernels/runtime.js';

let current: Runtime | null = null;

export function runtime(): Runtime {
  if (!current) throw new Error('medgrad: no GPU device yet: `await init()` before creating tensors');
  return current;
}

export function setRuntime(r: Runtime | null): void { current = r; }

export function hasRuntime(): boolean { return current !== null; }
