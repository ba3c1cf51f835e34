// Whether ops record the graph. noGrad() turns recording off for its body.
let enabled = true;

export function isGradEnabled(): boolean { return enabled; }

export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try { return fn(); } finally { enabled = prev; }
}

/** Runs fn with recording forced on or off; used by the engine around forward and backward. */
export function withGradMode<T>(on: boolean, fn: () => T): T {
  const prev = enabled;
  enabled = on;
  try { return fn(); } finally { enabled = prev; }
}
