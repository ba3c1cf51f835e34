// Channel-blocked layout A/B (issue 13): a chain of N conv(3x3, stride 1, padding 1, no bias)
// -> batch norm (training statistics) -> ReLU layers, forward only, run in NCHW with the
// engine's own kernels (whatever the registry picks: Winograd F(4x4) on the larger layers,
// the direct kernel otherwise; configurations named 'direct' force the direct kernel) against
// the same chain in the blocked layout NCHW[c/4]HW4 (engine/ops/layout.ts), whose conversions (input to
// blocked, weights rearranged every layer as a training step would, output back to NCHW) are
// counted once per chain. Parts: the convolution alone, and batch norm + ReLU alone, in each
// layout (no conversion). Every configuration runs once per round, rounds interleaved so that a
// shared machine's changing load hits all alike; round 0 warms up (compiles) and is dropped.
// Prints median and fastest times (ms) and the NCHW / blocked time ratio: its median (range)
// over rounds, and the ratio of the fastest times (steadier when other jobs load the machine).
//   npx tsx bench/layout.ts [--rounds N] [--layers 1,6] [SHAPE ...]   SHAPE: NxCinxHxW-Cout
//
// Result: negative. `npx tsx bench/layout.ts --rounds 9` (2026-12-02 05:36-05:45 UTC, lavapipe
// (LLVM 15) on this machine's 2 cores, shared with a niced long job and other helpers' tests:
// load average 15-21, so single rounds range widely; medians and minima of 9 rounds). NCHW /
// blocked time, median over rounds [ratio of the fastest times]; above 1 the blocked layout wins:
//                   chain N=1      chain N=6      N=6, NCHW direct  conv, NCHW direct  BN+ReLU alone
//   32x16x32x32-16  0.38 [0.30]    0.31 [0.23]    0.72 [0.97]       0.93 [0.57]        0.87 [1.32]
//   32x32x16x16-32  0.25 [0.13]    0.17 [0.13]    0.77 [0.66]       0.76 [0.76]        1.43 [1.16]
//   32x64x8x8-64    0.34 [0.10]    0.28 [0.21]    0.85 [0.58]       0.75 [0.77]        1.32 [1.38]
//   32x16x28x28-16  0.20 [0.27]    0.21 [0.23]    0.96 [0.96]       0.90 [0.93]        0.75 [1.15]
//   32x32x14x14-32  0.25 [0.22]    0.32 [0.28]    0.89 [0.96]       0.80 [1.29]        0.76 [0.96]
//   32x64x7x7-64    0.57 [0.53]    0.50 [0.49]    1.13 [1.32]       1.11 [1.20]       15.6 [6.57]
//   8x32x56x56-64   0.33 [0.28]    0.27 [0.22]    0.86 [0.91]       0.80 [0.80]        0.87 [0.99]
// The blocked direct convolution runs at about the NCHW direct kernel's rate (1.2-3.6 GFLOP/s
// under this load), so against the registry's pick (Winograd F(4x4) on every shape here) the
// blocked chain is 2-8x slower, with 6 layers as with 1: the conversions are not what loses.
// Batch norm + ReLU gains only where H W is not a multiple of 4 (7x7: the NCHW kernels fall
// back to scalar loads), elsewhere it is even within the noise. Why: lavapipe vectorises across
// invocations (one SIMD lane each), so a vec4 along channels is four scalar lanes' work, not a
// wider instruction; it saves only index arithmetic and bounds checks per load. Register
// blocks tried (one process, 3 shapes, same load): 4 blocks x 8 pixels (the default) is best or
// even with 2 x 8, 1 x 8, 2 x 4 and 4 x 16; 4 x 1, 4 x 2, 2 x 2, 1 x 2 are 2-6x slower.
import * as E from '../engine/node.js';
import { CONV_ALGORITHM } from '../engine/ops/conv.js';
import { blockedBatchNormRelu2d, blockedConv2d, blockWeights, fromBlocked, toBlocked } from '../engine/ops/layout.js';

// The study's ResNet-8/20 3x3 layers at 64 px (32/16/8 after the stem and strides) and 28 px
// (28/14/7), batch 32, and the bench's conv shape.
const DEFAULT = ['32x16x32x32-16', '32x32x16x16-32', '32x64x8x8-64', '32x16x28x28-16', '32x32x14x14-32', '32x64x7x7-64', '8x32x56x56-64'];
const argv = process.argv.slice(2);
const option = (name: string, fallback: string) => { const at = argv.indexOf(name); return at >= 0 ? argv.splice(at, 2)[1]! : fallback; };
const rounds = Number(option('--rounds', '7'));
const depths = option('--layers', '1,6').split(',').map(Number);
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('bench/layout.ts: --rounds needs a positive integer');
if (depths.some((d) => !Number.isInteger(d) || d < 1)) throw new Error('bench/layout.ts: --layers needs positive integers, e.g. 1,6');
const specs = (argv.length ? argv : DEFAULT).map((s) => {
  const m = /^(\d+)x(\d+)x(\d+)x(\d+)-(\d+)$/.exec(s);
  if (!m) throw new Error(`bench/layout.ts: shape '${s}' is not NxCinxHxW-Cout`);
  const [N, C, H, W, Co] = m.slice(1).map(Number) as [number, number, number, number, number];
  return { N, C, H, W, Co, name: s };
});

await E.init();
const policy = E.getEngine().policy;
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
const opts = { eps: 1e-5, momentum: 0.1 };

console.log(`conv 3x3 'same' -> batch norm (training) -> ReLU chains, forward, ${rounds} interleaved rounds (${E.getDevice().info.description || 'adapter'})`);
console.log(`${'shape'.padEnd(16)} ${'config'.padEnd(19)}${['NCHW', 'blocked', 'min N', 'min b'].map((h) => h.padStart(8)).join('')}   NCHW/blocked: median (range) over rounds   of the minima`);
for (const s of specs) {
  const depth = Math.max(...depths);
  const x = E.rand([s.N, s.C, s.H, s.W]);
  // Layer i maps C (first layer) or Co channels to Co.
  const ws = Array.from({ length: depth }, (_, i) => E.mul(E.rand([s.Co, i ? s.Co : s.C, 3, 3]), 0.1));
  const gamma = E.ones([s.Co]), beta = E.zeros([s.Co]), rm = E.zeros([s.Co]), rv = E.ones([s.Co]);
  const xb = toBlocked(x);
  const mid = E.rand([s.N, s.Co, s.H, s.W]), midB = toBlocked(mid);
  const wb0 = blockWeights(ws[0]!);
  const nchwChain = (n: number) => () => {
    let h = x;
    for (let i = 0; i < n; i++) h = E.batchNormRelu2d(E.conv2d(h, ws[i]!, undefined, { padding: 1 }), gamma, beta, rm, rv, null, { ...opts, training: true });
    return h;
  };
  const blockedChain = (n: number) => () => {
    let h = toBlocked(x);
    for (let i = 0; i < n; i++) h = blockedBatchNormRelu2d(blockedConv2d(h, blockWeights(ws[i]!), { padding: 1 }), s.Co, gamma, beta, rm, rv, opts);
    return fromBlocked(h, s.Co);
  };
  const direct = (f: () => E.Tensor) => () => { policy.force(CONV_ALGORITHM.name, 'direct'); try { return f(); } finally { policy.force(CONV_ALGORITHM.name, null); } };
  // [label, NCHW run, blocked run]
  const pairs: Array<[string, () => E.Tensor, () => E.Tensor]> = [
    ...depths.map((n): [string, () => E.Tensor, () => E.Tensor] => [`chain N=${n}`, nchwChain(n), blockedChain(n)]),
    ...depths.map((n): [string, () => E.Tensor, () => E.Tensor] => [`chain N=${n} direct`, direct(nchwChain(n)), blockedChain(n)]),
    ['conv only', () => E.conv2d(x, ws[0]!, undefined, { padding: 1 }), () => blockedConv2d(xb, wb0, { padding: 1 })],
    ['conv direct', direct(() => E.conv2d(x, ws[0]!, undefined, { padding: 1 })), () => blockedConv2d(xb, wb0, { padding: 1 })],
    ['bn+relu only', () => E.batchNormRelu2d(mid, gamma, beta, rm, rv, null, { ...opts, training: true }), () => blockedBatchNormRelu2d(midB, s.Co, gamma, beta, rm, rv, opts)],
  ];
  const ms = pairs.map(() => ({ a: [] as number[], b: [] as number[] }));
  const time = async (f: () => E.Tensor) => {
    const t0 = performance.now();
    E.noGrad(() => E.dispose(E.tidy(f)));
    await E.sync();
    return performance.now() - t0;
  };
  for (let r = 0; r <= rounds; r++) {
    for (const [k, [, a, b]] of pairs.entries()) {
      // Alternate which layout goes first, so neither always follows the other.
      let ta: number, tb: number;
      if (r % 2) { ta = await time(a); tb = await time(b); } else { tb = await time(b); ta = await time(a); }
      if (r > 0) { ms[k]!.a.push(ta); ms[k]!.b.push(tb); }
    }
  }
  for (const [k, [label]] of pairs.entries()) {
    const { a, b } = ms[k]!;
    const ratio = a.map((t, i) => t / b[i]!);
    const cells = [median(a), median(b), Math.min(...a), Math.min(...b)].map((t) => t.toFixed(1).padStart(8));
    console.log(`${s.name.padEnd(16)} ${label.padEnd(19)}${cells.join('')}   x${median(ratio).toFixed(2)} (${Math.min(...ratio).toFixed(2)}-${Math.max(...ratio).toFixed(2)})   x${(Math.min(...a) / Math.min(...b)).toFixed(2)}`);
  }
  E.dispose([x, ...ws, gamma, beta, rm, rv, xb, mid, midB, wb0]);
}
