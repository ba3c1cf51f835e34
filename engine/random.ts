// Seeded random numbers, generated on the CPU so every run and every platform replays the
// same stream: xoshiro128** seeded through splitmix32, normals by Box-Muller.

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export class Generator {
  private s = new Uint32Array(4);

  constructor(seed = 0) { this.manualSeed(seed); }

  manualSeed(seed: number): this {
    if (!Number.isFinite(seed)) throw new Error(`medgrad: seed must be a finite number, got ${seed}`);
    const sm = splitmix32(Math.floor(seed));
    for (let i = 0; i < 4; i++) this.s[i] = sm();
    return this;
  }

  /** The full state, to save in a checkpoint and restore with setState(). */
  getState(): number[] { return [...this.s]; }
  setState(state: readonly number[]): this {
    if (state.length !== 4) throw new Error(`medgrad: generator state must have 4 words, got ${state.length}`);
    this.s.set(state);
    return this;
  }

  nextU32(): number {
    const s = this.s;
    let a = s[0]!, b = s[1]!, c = s[2]!, d = s[3]!;
    const r = Math.imul(rotl(Math.imul(b, 5) >>> 0, 7), 9) >>> 0;
    const t = (b << 9) >>> 0;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d >>> 0, 11);
    s[0] = a; s[1] = b; s[2] = c; s[3] = d;
    return r;
  }

  /** Uniform in [0, 1). */
  random(): number { return this.nextU32() / 4294967296; }

  uniform(n: number, low = 0, high = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = low + (high - low) * this.random();
    return out;
  }

  normal(n: number, mean = 0, std = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const u = 1 - this.random();
      const v = this.random();
      const r = Math.sqrt(-2 * Math.log(u));
      out[i] = mean + std * r * Math.cos(2 * Math.PI * v);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * v);
    }
    return out;
  }

  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.random() * n); }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}

function rotl(x: number, k: number): number { return ((x << k) | (x >>> (32 - k))) >>> 0; }

/** The default generator used when an op is given no generator. */
export const defaultGenerator = new Generator(0);

export function manualSeed(seed: number): void { defaultGenerator.manualSeed(seed); }
