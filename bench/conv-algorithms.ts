// Convolution algorithms A/B in one process: conv2d forward + input and weight gradients of
// stride-1 3x3 'same' layers with each algorithm of the registry forced in turn ('auto' = the
// policy's own pick), repetition after repetition, so that a shared machine's changing load hits
// every algorithm alike. Prints the fastest time and the median (range) of the per-repetition
// speed-up over the direct kernels.
//   npx tsx bench/conv-algorithms.ts [--reps N] [SHAPE ...]   SHAPE: NxCinxHxW-Cout, e.g. 32x16x64x64-16
import * as E from '../engine/node.js';
import { CONV_ALGORITHM, CONV_WEIGHT_GRAD_ALGORITHM } from '../engine/ops/conv.js';

const DEFAULT = ['8x32x56x56-64', '32x16x56x56-16', '32x32x28x28-32', '32x64x14x14-64', '32x3x64x64-16', '32x16x64x64-16', '32x32x32x32-32', '32x64x16x16-64'];
const argv = process.argv.slice(2);
const at = argv.indexOf('--reps');
const reps = at >= 0 ? Number(argv.splice(at, 2)[1]) : 5;
if (!Number.isInteger(reps) || reps < 1) throw new Error('bench/conv-algorithms.ts: --reps needs a positive integer');
const specs = (argv.length ? argv : DEFAULT).map((s) => {
  const m = /^(\d+)x(\d+)x(\d+)x(\d+)-(\d+)$/.exec(s);
  if (!m) throw new Error(`bench/conv-algorithms.ts: shape '${s}' is not NxCinxHxW-Cout`);
  return { x: m.slice(1, 5).map(Number), cout: Number(m[5]) };
});

await E.init();
const policy = E.getEngine().policy;
const algorithms = [...CONV_ALGORITHM.variants.map((v) => v.name), 'auto'];
const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)]!;
console.log(`conv2d forward + both gradients, 3x3 stride 1 'same', ${reps} interleaved repetitions (${E.getDevice().info.description || 'adapter'})`);
for (const { x: xs, cout } of specs) {
  const x = E.rand(xs), w = E.mul(E.rand([cout, xs[1]!, 3, 3]), 0.1);
  const dy = E.rand([xs[0]!, cout, xs[2]!, xs[3]!]);
  const step = () => E.tidy(() => {
    const xx = E.mul(x, 1), ww = E.mul(w, 1);
    xx.requiresGrad = true; ww.requiresGrad = true;
    return E.grad(E.sum(E.mul(E.conv2d(xx, ww, undefined, { padding: 'same' }), dy)), [xx, ww]).map((g) => g!);
  });
  const ms: Record<string, number[]> = Object.fromEntries(algorithms.map((a) => [a, []]));
  for (let r = 0; r <= reps; r++) {
    for (const a of algorithms) {
      const forced = a === 'auto' ? null : a;
      policy.force(CONV_ALGORITHM.name, forced);
      policy.force(CONV_WEIGHT_GRAD_ALGORITHM.name, forced);
      const t0 = performance.now();
      E.dispose(step());
      await E.sync();
      if (r > 0) ms[a]!.push(performance.now() - t0); // repetition 0 warms up (compiles)
    }
  }
  policy.force(CONV_ALGORITHM.name, null);
  policy.force(CONV_WEIGHT_GRAD_ALGORITHM.name, null);
  const cells = algorithms.map((a) => {
    const up = ms[a]!.map((t, i) => ms.direct![i]! / t);
    return `${a} ${Math.min(...ms[a]!).toFixed(0)} ms` + (a === 'direct' ? '' : ` x${median(up).toFixed(2)} (${Math.min(...up).toFixed(2)}-${Math.max(...up).toFixed(2)})`);
  });
  console.log(`${xs.join('x')}-${cout}x3x3: ${cells.join(' | ')}`);
  E.dispose([x, w, dy]);
}
