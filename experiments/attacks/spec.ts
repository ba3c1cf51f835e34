// What an attack is: a named, fully specified L-infinity attack, and the epsilon units.
// Epsilon is stored as a fraction of the [0, 1] pixel range everywhere; 1/255 units (the
// paper's) are only a way of writing it, and every output shows both.

export type AttackKind = 'fgsm' | 'pgd' | 'apgd';

export interface AttackSpec {
  kind: AttackKind;
  /** 'least-likely': toward the clean prediction's least likely class (the paper's); 'none': untargeted. */
  target: 'least-likely' | 'none';
  /** The loss the attack ascends: cross-entropy, or the difference of logits ratio (APGD-DLR, 3+ classes). */
  loss: 'ce' | 'dlr';
  /** Gradient steps (FGSM: 1). */
  steps: number;
  /** PGD's step as a fraction of eps (the paper: 0.1); FGSM steps by eps; APGD sets its own. */
  stepFraction: number;
  /** Runs from fresh random starts; each sample keeps its worst case. */
  restarts: number;
  /** Start at a uniform random point of the eps-ball (PGD, APGD) instead of the clean image. */
  randomStart: boolean;
}

/** The attacks a study names, with the paper's settings for its own two. */
export const ATTACK_PRESETS: Record<string, AttackSpec> = {
  'fgsm-ll': { kind: 'fgsm', target: 'least-likely', loss: 'ce', steps: 1, stepFraction: 1, restarts: 1, randomStart: false },
  'pgd-ll': { kind: 'pgd', target: 'least-likely', loss: 'ce', steps: 20, stepFraction: 0.1, restarts: 1, randomStart: true },
  fgsm: { kind: 'fgsm', target: 'none', loss: 'ce', steps: 1, stepFraction: 1, restarts: 1, randomStart: false },
  // Madry et al.'s rule of thumb: steps of 2.5 eps / steps, so the walk can cross the ball.
  pgd: { kind: 'pgd', target: 'none', loss: 'ce', steps: 20, stepFraction: 0.125, restarts: 1, randomStart: true },
  'apgd-ce': { kind: 'apgd', target: 'none', loss: 'ce', steps: 20, stepFraction: 0, restarts: 1, randomStart: true },
  'apgd-dlr': { kind: 'apgd', target: 'none', loss: 'dlr', steps: 20, stepFraction: 0, restarts: 1, randomStart: true },
};

export interface AttackConfig extends AttackSpec { name: string }

/**
 * An attack from its preset name and overrides (`steps`, `restarts`, `stepFraction`), e.g.
 * attackConfig('pgd', { steps: 50, restarts: 3 }). The name in outputs records the overrides.
 */
export function attackConfig(name: string, o: { steps?: number; restarts?: number; stepFraction?: number } = {}): AttackConfig {
  const base = ATTACK_PRESETS[name];
  if (!base) throw new Error(`medgrad: unknown attack '${name}' (have ${Object.keys(ATTACK_PRESETS).join(', ')})`);
  const spec: AttackSpec = { ...base };
  if (o.steps !== undefined && base.kind !== 'fgsm') {
    if (!(Number.isInteger(o.steps) && o.steps >= 1)) throw new Error(`medgrad: attack '${name}': steps must be a positive integer, got ${o.steps}`);
    // PGD keeps its total travel when its step count changes: 2 eps for the paper's (20 x eps/10),
    // Madry's 2.5 eps for the untargeted one; otherwise fewer steps would make a weaker attack.
    if (base.kind === 'pgd' && o.stepFraction === undefined) spec.stepFraction = travel(base) / o.steps;
    spec.steps = o.steps;
  }
  if (o.restarts !== undefined) {
    if (!(Number.isInteger(o.restarts) && o.restarts >= 1)) throw new Error(`medgrad: attack '${name}': restarts must be a positive integer, got ${o.restarts}`);
    spec.restarts = base.kind === 'fgsm' ? 1 : o.restarts;
  }
  if (o.stepFraction !== undefined) {
    if (!(o.stepFraction > 0)) throw new Error(`medgrad: attack '${name}': stepFraction must be positive, got ${o.stepFraction}`);
    spec.stepFraction = o.stepFraction;
  }
  return { ...spec, name: attackLabel(name, spec) };
}

/** A PGD preset's total step length in units of eps. */
const travel = (base: AttackSpec): number => base.steps * base.stepFraction;

function attackLabel(name: string, s: AttackSpec): string {
  if (s.kind === 'fgsm') return name;
  const base = ATTACK_PRESETS[name]!;
  const parts = [`${s.steps}`];
  if (s.restarts > 1) parts.push(`x${s.restarts}`);
  if (s.kind === 'pgd' && Math.abs(s.stepFraction - travel(base) / s.steps) > 1e-12) parts.push(`a${s.stepFraction}`);
  return `${name}-${parts.join('-')}`;
}

/**
 * Parses epsilons. Plain numbers are in `unit` (default 1/255, as the paper writes them);
 * 'N/255' is always 1/255 units; with unit 'fraction', plain numbers are fractions of [0, 1].
 */
export function parseEps(list: string | ReadonlyArray<string | number>, unit: '255' | 'fraction' = '255', what = '--eps'): number[] {
  const items = typeof list === 'string' ? list.split(',').map((s) => s.trim()).filter(Boolean) : list.map(String);
  if (!items.length) throw new Error(`medgrad: ${what}: no epsilon given`);
  return items.map((s) => {
    const m = /^([0-9.eE+-]+)\/255$/.exec(s);
    const v = Number(m ? m[1] : s);
    if (!Number.isFinite(v) || v < 0) throw new Error(`medgrad: ${what}: '${s}' is not a non-negative number`);
    const frac = m || unit === '255' ? v / 255 : v;
    if (frac > 1) throw new Error(`medgrad: ${what}: '${s}' is more than the whole [0, 1] pixel range${unit === 'fraction' && !m ? ' (values are fractions; did you mean 1/255 units?)' : ''}`);
    return frac;
  });
}

/** "4/255 (0.0157)": both units, so no reader has to guess. */
export function formatEps(eps: number): string {
  return `${+(eps * 255).toFixed(4)}/255 (${+eps.toFixed(5)})`;
}

/** The epsilon in 1/255 units, rounded to hide float noise (for table columns and ids). */
export const eps255 = (eps: number): number => +(eps * 255).toFixed(4);
