// `medgrad profile`: runs a small training workload under the profiler and prints the per-op
// table; optionally writes a Chrome trace / Perfetto JSON file.
import * as E from '../../engine/node.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Command } from './commands.js';
import { numberReader, parseOptions, POSITIVE_INT } from './args.js';

const USAGE = `usage: medgrad profile [--batch B] [--features F] [--hidden H] [--classes K] [--steps S] [--trace FILE]
  Profiles S steps of a two-layer MLP (forward, backward, SGD update) on random data.
  --batch B      rows per step (default 64)
  --features F   input features (default 256)
  --hidden H     hidden units (default 512)
  --classes K    output classes (default 10)
  --steps S      training steps (default 10)
  --trace FILE   also write a Chrome trace (open in chrome://tracing or ui.perfetto.dev)`;

const NUMBERS = { batch: POSITIVE_INT, features: POSITIVE_INT, hidden: POSITIVE_INT, classes: POSITIVE_INT, steps: POSITIVE_INT };

export const profileCommand: Command = {
  summary: 'profile a small training workload: per-op GPU time, GFLOP/s, GB/s, Chrome trace',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad profile', {
      args: argv,
      options: {
        batch: { type: 'string' }, features: { type: 'string' }, hidden: { type: 'string' },
        classes: { type: 'string' }, steps: { type: 'string' }, trace: { type: 'string' },
      },
    });
    const num = numberReader('medgrad profile', values, NUMBERS);
    const B = num('batch', 64), F = num('features', 256), H = num('hidden', 512), K = num('classes', 10), steps = num('steps', 10);
    await E.init();
    const g = new E.Generator(0);
    const w1 = E.randn([F, H], { generator: g, std: Math.sqrt(2 / F), requiresGrad: true });
    const w2 = E.randn([H, K], { generator: g, std: Math.sqrt(2 / H), requiresGrad: true });
    const x = E.randn([B, F], { generator: g });
    const y = E.randint(0, K, [B], { generator: g });
    const step = () => E.tidy(() => {
      const loss = E.crossEntropy(E.matmul(E.relu(E.matmul(x, w1)), w2), y);
      const [g1, g2] = E.grad(loss, [w1, w2]);
      E.noGrad(() => { w1.assign(E.sub(w1, E.mul(g1!, 0.01))); w2.assign(E.sub(w2, E.mul(g2!, 0.01))); });
    });
    step(); // compile pipelines outside the profile
    await E.sync();
    const report = await E.profile(() => { for (let i = 0; i < steps; i++) step(); });
    console.log(`MLP ${F}-${H}-${K}, batch ${B}, ${steps} steps on ${E.getDevice().info.description || E.getDevice().info.vendor}`);
    console.log(report.table());
    if (values.trace) {
      writeFileAtomic(values.trace, JSON.stringify(report.chromeTrace()));
      console.log(`trace written to ${values.trace}`);
    }
    E.dispose([w1, w2, x, y]);
    return 0;
  },
};
