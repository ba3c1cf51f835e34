// Multiple-comparison correction for the family of paired model comparisons.

function checkP(ps: readonly number[], who: string): void {
  ps.forEach((p, i) => {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`${who}: p-values must lie in [0, 1], got ${p} at index ${i}`);
  });
}

/**
 * Holm-Bonferroni step-down adjusted p-values (Holm 1979), in the input order: the i-th
 * smallest p is multiplied by (m - i + 1), the results are made non-decreasing in that order
 * (a later hypothesis can never be rejected before an earlier one) and capped at 1. Rejecting
 * where the adjusted p <= alpha controls the family-wise error rate at alpha under any
 * dependence between the tests, which the comparisons here have: they share images and models.
 */
export function holm(pValues: readonly number[]): number[] {
  checkP(pValues, 'holm');
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, rank) => {
    running = Math.min(1, Math.max(running, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

/** Which hypotheses Holm's procedure rejects at family-wise level alpha, in the input order. */
export function significantAfterHolm(pValues: readonly number[], alpha = 0.05): boolean[] {
  if (!(alpha > 0 && alpha < 1)) throw new RangeError(`significantAfterHolm: alpha must lie in (0, 1), got ${alpha}`);
  return holm(pValues).map((p) => p <= alpha);
}
