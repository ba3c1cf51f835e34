// The study's statistics against published values, scipy, and brute-force references.
import { describe, expect, it } from 'vitest';
import {
  holm, logBinomialHalfCdf, mcnemarExact, mean, normalQuantile, pairedCompare, pairedDifferenceInterval,
  sampleStd, seedSummary, significantAfterHolm, stratifiedMcNemar, wilson,
} from '../experiments/stats/index.js';

/** Deterministic uniform [0, 1) stream (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const randInt = (r: () => number, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));

/** Exact two-sided McNemar p with BigInt: sum of C(n, k) for k <= min(b, c), over 2^n, doubled. */
function exactMcNemar(b: number, c: number): number {
  const n = BigInt(b + c), m = BigInt(Math.min(b, c));
  if (n === 0n) return 1;
  let term = 1n, sum = 1n;
  for (let k = 0n; k < m; k++) {
    term = (term * (n - k)) / (k + 1n);
    sum += term;
  }
  // 2 sum / 2^n to float: shift the numerator so the integer quotient keeps 64 significant
  // bits however small the ratio, then scale back down in steps that cannot underflow early.
  const num = 2n * sum, shift = Math.max(0, Number(n) - num.toString(2).length + 64);
  let p = Number((num << BigInt(shift)) >> n);
  for (let left = shift; left > 0; left -= 512) p *= 2 ** -Math.min(512, left);
  return Math.min(1, p);
}

/** Holm's adjusted p-values by its definition: max over j <= i of min(1, (m - j + 1) p_(j)). */
function bruteHolm(ps: number[]): number[] {
  const m = ps.length;
  const sorted = [...ps].sort((a, b) => a - b);
  return ps.map((p) => {
    const rank = sorted.indexOf(p); // Ties share a value, so the first one's rank is enough.
    let best = 0;
    for (let j = 0; j <= rank; j++) best = Math.max(best, Math.min(1, (m - j) * sorted[j]!));
    return best;
  });
}

describe('normalQuantile', () => {
  it('matches scipy.stats.norm.ppf', () => {
    // scipy 1.17 norm.ppf: 0.975 -> 1.959963984540054, 0.995 -> 2.5758293035489004,
    // 0.9 -> 1.2815515655446004, 1e-10 -> -6.361340902404056, 1 - 1e-12 -> 7.0344869100478356.
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 14);
    expect(normalQuantile(0.995)).toBeCloseTo(2.5758293035489004, 14);
    expect(normalQuantile(0.9)).toBeCloseTo(1.2815515655446004, 14);
    expect(normalQuantile(1e-10)).toBeCloseTo(-6.361340902404056, 12);
    expect(normalQuantile(1 - 1e-12)).toBeCloseTo(7.0344869100478356, 10);
    expect(normalQuantile(0.5)).toBe(0);
    expect(() => normalQuantile(1.5)).toThrow(RangeError);
  });
});

describe('wilson', () => {
  it('reproduces Newcombe (1998) Table I, method 3 (Wilson score without continuity correction)', () => {
    // R. G. Newcombe, "Two-sided confidence intervals for the single proportion: comparison of
    // seven methods", Statistics in Medicine 17:857-872 (1998), Table I; also checked with
    // scipy.stats.binomtest(x, n).proportion_ci(method='wilson').
    const table: Array<[number, number, number, number]> = [[81, 263, 0.2553, 0.3662], [15, 148, 0.0624, 0.1605], [0, 20, 0, 0.1611], [1, 29, 0.0061, 0.1718]];
    for (const [x, n, lo, hi] of table) {
      const w = wilson(x, n);
      expect(w.p).toBeCloseTo(x / n, 15);
      expect(w.lo).toBeCloseTo(lo, 4);
      expect(w.hi).toBeCloseTo(hi, 4);
    }
    // scipy to 12 digits for the first row.
    expect(wilson(81, 263).lo).toBeCloseTo(0.2552885198782742, 12);
    expect(wilson(81, 263).hi).toBeCloseTo(0.36620957698280004, 12);
  });

  it('handles the edges: n = 0, all successes, other confidence levels', () => {
    expect(wilson(0, 0)).toEqual({ p: 0, lo: 0, hi: 1 });
    const all = wilson(29, 29);
    expect(all.hi).toBe(1);
    expect(all.lo).toBeCloseTo(0.8830302015002592, 12); // scipy
    // Higher confidence gives a wider interval around the same estimate.
    const w95 = wilson(30, 100), w99 = wilson(30, 100, 0.99);
    expect(w99.lo).toBeLessThan(w95.lo);
    expect(w99.hi).toBeGreaterThan(w95.hi);
    expect(() => wilson(5, 4)).toThrow(RangeError);
    expect(() => wilson(1.5, 4)).toThrow(RangeError);
  });

  it('is the set of p the score test does not reject (random n, x)', () => {
    // Definition check: at each limit L, |x/n - L| = z sqrt(L (1 - L) / n).
    const r = rng(7), z = normalQuantile(0.975);
    for (let t = 0; t < 200; t++) {
      const n = randInt(r, 1, 5000), x = randInt(r, 0, n), w = wilson(x, n);
      for (const L of [w.lo, w.hi]) {
        if (L === 0 || L === 1) continue;
        expect(Math.abs(x / n - L)).toBeCloseTo(z * Math.sqrt(L * (1 - L) / n), 10);
      }
      expect(w.lo).toBeLessThanOrEqual(w.p);
      expect(w.hi).toBeGreaterThanOrEqual(w.p);
    }
  });
});

describe('mcnemarExact', () => {
  it('matches hand-computed and scipy.stats.binomtest values', () => {
    // b = 1, c = 9: 2 (C(10,0) + C(10,1)) / 2^10 = 22 / 1024 = 0.021484375.
    expect(mcnemarExact(1, 9)).toBeCloseTo(0.021484375, 15);
    expect(mcnemarExact(9, 1)).toBeCloseTo(0.021484375, 15);
    expect(mcnemarExact(0, 12)).toBeCloseTo(2 / 4096, 15);
    expect(mcnemarExact(5, 5)).toBe(1);
    expect(mcnemarExact(0, 0)).toBe(1);
    // scipy 1.17 binomtest(b, b + c, 0.5).pvalue (two-sided).
    const scipy: Array<[number, number, number]> = [[21, 37, 0.047940324071667], [150, 210, 0.00183400741709648], [1480, 1620, 0.0125296612265819], [2400, 2600, 0.00488364973751749]];
    for (const [b, c, p] of scipy) expect(mcnemarExact(b, c) / p).toBeCloseTo(1, 11);
  });

  it('agrees with exact BigInt arithmetic up to several thousand discordant pairs', () => {
    const r = rng(11);
    for (let t = 0; t < 60; t++) {
      // Half the draws within 3 standard deviations of n / 2, where p is neither 1 nor tiny.
      const n = randInt(r, 1, 6000), near = Math.round(n / 2 + (r() - 0.5) * 6 * Math.sqrt(n) / 2);
      const b = t % 2 ? randInt(r, 0, n) : Math.min(n, Math.max(0, near));
      const want = exactMcNemar(b, n - b), got = mcnemarExact(b, n - b);
      if (want < 1e-290) expect(got).toBeLessThan(1e-280);
      else expect(Math.abs(got - want) / want).toBeLessThan(1e-10);
    }
  });

  it('keeps the log CDF finite where 2^-n underflows', () => {
    // P(X <= 0) = 2^-5000: ln = -5000 ln 2, representable in log space only.
    expect(logBinomialHalfCdf(0, 5000)).toBeCloseTo(-5000 * Math.LN2, 8);
    expect(logBinomialHalfCdf(5000, 5000)).toBe(0);
    // The upper branch: P(X <= n - 1) = 1 - 2^-n.
    expect(Math.exp(logBinomialHalfCdf(19, 20))).toBeCloseTo(1 - 2 ** -20, 15);
    expect(() => mcnemarExact(-1, 3)).toThrow(RangeError);
  });
});

describe('stratifiedMcNemar', () => {
  it('pools discordant counts over seeds into one exact test', () => {
    const t = stratifiedMcNemar([{ b: 1, c: 4 }, { b: 0, c: 3 }, { b: 0, c: 2 }]);
    expect(t).toEqual({ b: 1, c: 9, p: mcnemarExact(1, 9), better: 'B' });
    expect(stratifiedMcNemar([])).toEqual({ b: 0, c: 0, p: 1, better: 'tie' });
    expect(stratifiedMcNemar([{ b: 30, c: 12 }]).better).toBe('A');
  });

  it('has the exact null distribution: the sum of per-stratum Binomial(m_s, 1/2) is Binomial(sum m_s, 1/2)', () => {
    // Convolve the per-stratum null distributions and compare the two-sided tail with the pooled test.
    const ms = [3, 7, 12];
    let dist = [1];
    for (const m of ms) {
      const pmf = Array.from({ length: m + 1 }, (_, k) => Math.exp(logBinomialHalfCdf(k, m)) - (k ? Math.exp(logBinomialHalfCdf(k - 1, m)) : 0));
      const next = new Array<number>(dist.length + m).fill(0);
      dist.forEach((p, i) => pmf.forEach((q, j) => { next[i + j]! += p * q; }));
      dist = next;
    }
    const total = ms.reduce((s, m) => s + m, 0);
    for (let b = 0; b <= total; b++) {
      const k = Math.min(b, total - b);
      const tail = dist.slice(0, k + 1).reduce((s, p) => s + p, 0);
      expect(stratifiedMcNemar([{ b, c: total - b }]).p).toBeCloseTo(Math.min(1, 2 * tail), 12);
    }
  });
});

describe('pairedCompare and pairedDifferenceInterval', () => {
  it('counts discordant images and tests them', () => {
    const A = [true, true, true, false, false, true, true, false, true, true];
    const B = [true, false, false, false, true, true, false, false, false, true];
    const c = pairedCompare(A, B);
    expect(c).toMatchObject({ n: 10, accA: 0.7, accB: 0.4, b: 4, c: 1, better: 'A' });
    expect(c.diff).toBeCloseTo(0.3, 15);
    expect(c.p).toBeCloseTo(2 * 6 / 32, 15); // 2 (C(5,0) + C(5,1)) / 2^5
    expect(c.lo).toBeLessThan(c.diff);
    expect(c.hi).toBeGreaterThan(c.diff);
    expect(pairedCompare([], [])).toMatchObject({ n: 0, b: 0, c: 0, p: 1, lo: -1, hi: 1 });
    expect(() => pairedCompare([true], [])).toThrow(RangeError);
  });

  it("matches an independent Python implementation of Newcombe's method 10", () => {
    // Newcombe, "Improved confidence intervals for the difference between binomial proportions
    // based on paired data", Stat Med 17:2635-2650 (1998), method 10, written separately in
    // Python from the paper's formulas (values to 15 digits).
    const cases: Array<[number, number, number, number, number, number]> = [
      [36, 12, 2, 0, 0.0569295840032387, 0.340427602974941],
      [10, 3, 2, 15, -0.11965260103073, 0.183250186016991],
      [400, 37, 21, 42, 0.00191420904771494, 0.0626273568602289],
      [0, 0, 5, 0, -1, -0.385549005690344],
    ];
    for (const [both, b, c, neither, lo, hi] of cases) {
      const r = pairedDifferenceInterval({ both, b, c, neither });
      expect(r.diff).toBeCloseTo((b - c) / (both + b + c + neither), 14);
      expect(r.lo).toBeCloseTo(lo, 12);
      expect(r.hi).toBeCloseTo(hi, 12);
    }
  });

  it('gives ordered intervals inside [-1, 1] that flip sign when the models swap (random tables)', () => {
    const r = rng(3);
    for (let t = 0; t < 300; t++) {
      const tab = { both: randInt(r, 0, 400), b: randInt(r, 0, 60), c: randInt(r, 0, 60), neither: randInt(r, 0, 100) };
      const x = pairedDifferenceInterval(tab), y = pairedDifferenceInterval({ ...tab, b: tab.c, c: tab.b });
      if (tab.both + tab.b + tab.c + tab.neither === 0) continue;
      expect(x.lo).toBeGreaterThanOrEqual(-1);
      expect(x.hi).toBeLessThanOrEqual(1);
      expect(x.lo).toBeLessThanOrEqual(x.diff);
      expect(x.hi).toBeGreaterThanOrEqual(x.diff);
      expect(y.lo).toBeCloseTo(-x.hi, 12);
      expect(y.hi).toBeCloseTo(-x.lo, 12);
    }
  });
});

describe('holm', () => {
  it('matches the textbook example', () => {
    // p = (0.01, 0.04, 0.03, 0.005): sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 gives
    // 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03, 0.06, 0.06 (R: p.adjust(p, "holm")).
    const adj = holm([0.01, 0.04, 0.03, 0.005]);
    [0.03, 0.06, 0.06, 0.02].forEach((v, i) => expect(adj[i]).toBeCloseTo(v, 15));
    expect(significantAfterHolm([0.01, 0.04, 0.03, 0.005])).toEqual([true, false, false, true]);
    expect(significantAfterHolm([0.01, 0.04, 0.03, 0.005], 0.1)).toEqual([true, true, true, true]);
    expect(holm([])).toEqual([]);
    expect(holm([0.7, 0.6])).toEqual([1, 1]);
    expect(() => holm([0.1, Number.NaN])).toThrow(RangeError);
  });

  it('equals the definition on random p-values, ties included', () => {
    const r = rng(5);
    for (let t = 0; t < 200; t++) {
      const m = randInt(r, 1, 20);
      const ps = Array.from({ length: m }, () => (r() < 0.2 ? 0.01 : r() ** 3));
      const got = holm(ps), want = bruteHolm(ps);
      got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 14));
      got.forEach((v, i) => expect(v).toBeGreaterThanOrEqual(ps[i]!));
    }
  });
});

describe('seed summaries', () => {
  it('gives the mean and the n - 1 standard deviation', () => {
    // numpy: np.std([0.91, 0.88, 0.93, 0.9], ddof=1) = 0.020816659994661348.
    expect(mean([0.91, 0.88, 0.93, 0.9])).toBeCloseTo(0.905, 15);
    expect(sampleStd([0.91, 0.88, 0.93, 0.9])).toBeCloseTo(0.020816659994661348, 14);
    expect(seedSummary([0.5])).toEqual({ mean: 0.5, std: 0, n: 1 });
    expect(() => mean([])).toThrow(RangeError);
  });
});
