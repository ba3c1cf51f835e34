// Summaries of one quantity over training seeds.

/** Arithmetic mean; throws on an empty list, which has none. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('mean: no values');
  return values.reduce((s, x) => s + x, 0) / values.length;
}

/**
 * Sample standard deviation (n - 1 denominator: the seeds are a sample of possible training
 * runs). A single seed gives 0, as the study's tables print one seed without a spread;
 * check n before reading it as evidence of no variation.
 */
export function sampleStd(values: readonly number[]): number {
  const m = mean(values);
  if (values.length < 2) return 0;
  return Math.sqrt(values.reduce((s, x) => s + (x - m) ** 2, 0) / (values.length - 1));
}

/** Mean, sample standard deviation and count of per-seed values. */
export interface SeedSummary { mean: number; std: number; n: number }

export function seedSummary(values: readonly number[]): SeedSummary {
  return { mean: mean(values), std: sampleStd(values), n: values.length };
}
