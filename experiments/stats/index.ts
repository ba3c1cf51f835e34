// Statistics for the study's tables and report: plain numbers in, plain numbers out.
export { normalQuantile, wilson, type ProportionInterval } from './interval.js';
export {
  logBinomialHalfCdf, mcnemarExact, stratifiedMcNemar, pairedCompare, pairedDifferenceInterval,
  type Discordant, type PairedTest, type PairedComparison, type PairedTable,
} from './paired.js';
export { holm, significantAfterHolm } from './multiple.js';
export { mean, sampleStd, seedSummary, type SeedSummary } from './summary.js';
