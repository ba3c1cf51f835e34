// The current engine: the one init() made last. Everything that needs the device when it is
// called (allocating a tensor, recording a kernel) asks here; nothing else is global.
import type { Engine } from './engine.js';
import type { Runtime } from './kernels/runtime.js';

let current: Engine | null = null;

export function engine(): Engine {
  if (!current) throw new Error('medgrad: no GPU device yet: `await init()` before creating tensors');
  return current;
}

/** The current engine, or null before init(). */
export function currentEngine(): Engine | null { return current; }

export function setEngine(e: Engine | null): void { current = e; }

/** The current engine's kernel runtime (the ops' way to record dispatches). */
export function runtime(): Runtime { return engine().runtime; }
