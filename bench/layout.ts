// Channel-blocked layout A/B (issue 13): a chain of N conv(3x3, stride 1, padding 1, no bias)
// -> batch norm (training statistics) -> ReLU layers, forward only, run in NCHW with the
// engine's own kernels (whatever the registry picks: Winograd F(4x4) on the larger layers,
// the direct kernel otherwise; 'nchw-direct' forces the direct kernel) against the same chain
// in the blocked layout NCHW[c/4]HW4 (engine/ops/layout.ts), whose conversions (input to
// blocked, weights rearranged every layer as a training step would, output back to NCHW) are
// counted once per chain. Parts: the convolution alone, and batch norm + ReLU alone, in each
// layout (no conversion). Every configuration runs once per round, rounds interleaved so that a
// shared machine's changing load hits all alike; round 0 warms up (compiles) and is dropped.
// Prints median and fastest times (ms) and the NCHW / blocked time ratio: its median (range)
// over rounds, and the ratio of the fastest times (steadier when other jobs load the machine).
//   npx tsx bench/layout.ts [--rounds N] [--layers 1,6] [SHAPE ...]   SHAPE: NxCinxHxW-Cout
//
// Result (05:2x UTC 2026-12-02, lavapipe on this machine's 2 cores, shared with a niced long
// job and other helpers' tests): see the commit that added this file and the lead's report.
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
