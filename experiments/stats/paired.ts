// Paired comparisons of two classifiers scored on the same images: the exact McNemar test,
// its stratified form over training seeds, and Newcombe's interval for the accuracy difference.
import { wilson } from './interval.js';

/**
 * ln P(X <= k) for X ~ Binomial(n, 1/2), summed in log space from the lower tail so that no
 * term under- or overflows: 2^-n alone is 0 in float64 beyond n = 1074, and C(n, k)
 * overflows beyond n = 1029. Consecutive terms follow the exact ratio (n - i) / (i + 1).
 */
export function logBinomialHalfCdf(k: number, n: number): number {
  if (k < 0) return -Infinity;
  if (k >= n) return 0;
  // Summing the shorter tail loses nothing when k is near n; the upper tail then gives 1 - P.
  if (k > n / 2) return Math.log1p(-Math.exp(logBinomialHalfCdf(n - k - 1, n)));
  let logTerm = -n * Math.LN2, logSum = logTerm;
  for (let i = 0; i < k; i++) {
    logTerm += Math.log((n - i) / (i + 1));
    // log(e^s + e^t) with t >= s here, since terms rise towards the mode at n / 2.
    logSum = logTerm + Math.log1p(Math.exp(logSum - logTerm));
  }
  return logSum;
}

function checkCount(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
}

/**
 * The exact two-sided McNemar test on the discordant counts: b images only model A classifies
 * correctly, c only model B. Under H0 (both models equally accurate) b ~ Binomial(b + c, 1/2)
 * given b + c, and the p-value doubles the smaller tail: min(1, 2 P(X <= min(b, c))).
 * Returns 1 when there are no discordant images. Valid for any b + c; p underflows to 0 only
 * below about 1e-308.
 */
export function mcnemarExact(b: number, c: number): number {
  checkCount('mcnemarExact: b', b);
  checkCount('mcnemarExact: c', c);
  const n = b + c;
  if (n === 0) return 1;
  return Math.min(1, 2 * Math.exp(logBinomialHalfCdf(Math.min(b, c), n)));
}

/** Discordant counts of one stratum (one training seed): b only A right, c only B right. */
export interface Discordant { b: number; c: number }

/** A paired test result: pooled discordant counts, two-sided p-value and which model wins. */
export interface PairedTest extends Discordant {
  p: number;
  /** 'A' when b > c, 'B' when c > b, 'tie' when equal; a direction, not a significance claim. */
  better: 'A' | 'B' | 'tie';
}

/**
 * The exact McNemar test stratified over seeds. Conditional on its discordant total m_s, each
 * stratum's b_s is Binomial(m_s, 1/2) under H0 (every discordant image is a fair coin between
 * the two models, as in the unstratified test), and strata are independent (separate training
 * runs), so sum b_s is exactly Binomial(sum m_s, 1/2): the pooled counts give an exact test of
 * the common null, with no assumption that accuracies are equal across seeds. It is the exact
 * counterpart of the Mantel-Haenszel test for matched pairs. Caveat: seeds scored on the same
 * test images share those images, so the across-seed independence holds under the sharp null
 * (models exchangeable on every image) but not for an effect that is null only on average.
 */
export function stratifiedMcNemar(strata: readonly Discordant[]): PairedTest {
  let b = 0, c = 0;
  strata.forEach((s, i) => {
    checkCount(`stratifiedMcNemar: strata[${i}].b`, s.b);
    checkCount(`stratifiedMcNemar: strata[${i}].c`, s.c);
    b += s.b;
    c += s.c;
  });
  return { b, c, p: mcnemarExact(b, c), better: b > c ? 'A' : c > b ? 'B' : 'tie' };
}

/** Per-image comparison of two models on the same images; accuracies and differences are fractions. */
export interface PairedComparison extends PairedTest {
  n: number;
  accA: number;
  accB: number;
  /** accA - accB. */
  diff: number;
  /** 95% interval for diff (Newcombe's method 10, see pairedDifferenceInterval). */
  lo: number;
  hi: number;
}

/**
 * Compare two models on the same images: correctA[i] and correctB[i] say whether each model
 * classified image i correctly. Returns both accuracies, the discordant counts, the exact
 * McNemar p-value and a 95% interval for the accuracy difference.
 */
export function pairedCompare(correctA: readonly boolean[], correctB: readonly boolean[]): PairedComparison {
  if (correctA.length !== correctB.length) throw new RangeError(`pairedCompare: ${correctA.length} results for A but ${correctB.length} for B; they must score the same images`);
  const n = correctA.length;
  let both = 0, b = 0, c = 0;
  for (let i = 0; i < n; i++) {
    const okA = correctA[i]!, okB = correctB[i]!;
    if (okA && okB) both++;
    else if (okA) b++;
    else if (okB) c++;
  }
  const accA = n ? (both + b) / n : 0, accB = n ? (both + c) / n : 0;
  const { lo, hi } = pairedDifferenceInterval({ both, b, c, neither: n - both - b - c });
  return { n, accA, accB, diff: accA - accB, lo, hi, b, c, p: mcnemarExact(b, c), better: b > c ? 'A' : c > b ? 'B' : 'tie' };
}

/** The 2x2 table of paired outcomes: both right, only A right (b), only B right (c), both wrong. */
export interface PairedTable { both: number; b: number; c: number; neither: number }

/**
 * A confidence interval for the difference of paired proportions accA - accB by Newcombe's
 * method 10 (Stat Med 17:2635, 1998): Wilson intervals of the two marginal accuracies combined
 * with the continuity-corrected correlation phi of the pairs. It stays inside [-1, 1], is never
 * degenerate, and keeps near-nominal coverage where the Wald interval fails (few discordant
 * pairs, accuracies near 0 or 1). With n = 0 it spans [-1, 1].
 */
export function pairedDifferenceInterval(t: PairedTable, confidence = 0.95): { diff: number; lo: number; hi: number } {
  for (const k of ['both', 'b', 'c', 'neither'] as const) checkCount(`pairedDifferenceInterval: ${k}`, t[k]);
  const n = t.both + t.b + t.c + t.neither;
  if (n === 0) return { diff: 0, lo: -1, hi: 1 };
  const wa = wilson(t.both + t.b, n, confidence), wb = wilson(t.both + t.c, n, confidence);
  const margins = (t.both + t.b) * (t.c + t.neither) * (t.both + t.c) * (t.b + t.neither);
  // Newcombe shrinks a positive cross-product by n / 2 (a continuity correction); phi = 0 if a margin is empty.
  const cross = t.both * t.neither - t.b * t.c;
  const phi = margins === 0 ? 0 : (cross > 0 ? Math.max(cross - n / 2, 0) : cross) / Math.sqrt(margins);
  const diff = wa.p - wb.p;
  const dl1 = wa.p - wa.lo, du1 = wa.hi - wa.p, dl2 = wb.p - wb.lo, du2 = wb.hi - wb.p;
  return {
    diff,
    lo: Math.max(-1, diff - Math.sqrt(Math.max(0, dl1 * dl1 - 2 * phi * dl1 * du2 + du2 * du2))),
    hi: Math.min(1, diff + Math.sqrt(Math.max(0, du1 * du1 - 2 * phi * du1 * dl2 + dl2 * dl2))),
  };
}
