// Whether ops record the graph: the current engine's grad mode. noGrad() turns recording off
// for its body. Before init() there is no engine and nothing to record, so fn just runs.
import { currentEngine } from '../context.js';

export function isGradEnabled(): boolean { return currentEngine()?.gradEnabled ?? true; }

/** Runs fn with recording forced on or off; used by the engine around forward and backward. */
export function withGradMode<T>(on: boolean, fn: () => T): T {
  const e = currentEngine();
  if (!e) return fn();
  const prev = e.gradEnabled;
  e.gradEnabled = on;
  try { return fn(); } finally { e.gradEnabled = prev; }
}

export function noGrad<T>(fn: () => T): T { return withGradMode(false, fn); }
