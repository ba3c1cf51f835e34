// NumPy's legacy RandomState (MT19937 seeded with init_genrand) and its permutation, so that
// the protocol's splits (scikit-learn's train_test_split with random_state=seed) are the
// paper's exact index sets rather than a look-alike.

export class MT19937 {
  private mt = new Uint32Array(624);
  private i = 625;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1]! ^ (this.mt[i - 1]! >>> 30);
      // 1812433253 * prev + i, in 32-bit arithmetic.
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
    this.i = 624;
  }

  nextU32(): number {
    const mt = this.mt;
    if (this.i >= 624) {
      for (let k = 0; k < 624; k++) {
        const y = (mt[k]! & 0x80000000) | (mt[(k + 1) % 624]! & 0x7fffffff);
        mt[k] = mt[(k + 397) % 624]! ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
      }
      this.i = 0;
    }
    let y = mt[this.i++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform integer in [0, max] by masked rejection, as NumPy's legacy random_interval. */
  interval(max: number): number {
    if (max === 0) return 0;
    let mask = max;
    mask |= mask >>> 1; mask |= mask >>> 2; mask |= mask >>> 4; mask |= mask >>> 8; mask |= mask >>> 16;
    let v: number;
    do { v = (this.nextU32() & mask) >>> 0; } while (v > max);
    return v;
  }

  /** np.random.RandomState(seed).permutation(n). */
  permutation(n: number): number[] {
    const a = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.interval(i);
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }
}

/**
 * sklearn.model_selection.train_test_split(range(n), test_size, random_state=seed), without
 * stratification: returns [train, test] index lists in scikit-learn's order.
 */
export function trainTestSplit(n: number, testSize: number, seed: number): [number[], number[]] {
  const nTest = Math.ceil(testSize * n);
  const nTrain = n - nTest;
  if (nTest < 1 || nTrain < 1) throw new Error(`medgrad: cannot split ${n} samples with test_size ${testSize}`);
  const perm = new MT19937(seed).permutation(n);
  return [perm.slice(nTest, nTest + nTrain), perm.slice(0, nTest)];
}
