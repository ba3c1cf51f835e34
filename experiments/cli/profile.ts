// `medgrad profile`: runs a workload under the profiler and prints the per-op table (and, for
// the study's models, each op family's share); optionally writes a Chrome trace / Perfetto JSON.
import * as E from '../../engine/node.js';
import { MODEL_NAMES, type ModelName } from '../../nn/models.js';
import { writeFileAtomic } from '../io/atomic.js';
import type { Command } from './commands.js';
import { numberReader, parseOptions, POSITIVE_INT } from './args.js';
import { familyShares, familyTable, profileModel, WORKLOADS, type Workload } from './profile-model.js';

const USAGE = `usage: medgrad profile [--model NAME --image-size S --workload train|attack|eval] [--batch B] [--steps S] [--trace FILE]
       medgrad profile [--batch B] [--features F] [--hidden H] [--classes K] [--steps S] [--trace FILE]
  With --model: profiles S repetitions of one of the study's models (${MODEL_NAMES.join(', ')}) on
  random images: a training step (forward, loss, backward, Adam), an attack step (one PGD
  iteration on the input, model frozen) or inference; prints the per-op table and each op
  family's share of GPU time. Without: S steps of a two-layer MLP (forward, backward, SGD).
  --model NAME   a study model (default: the MLP demo)
  --image-size S input size in pixels (default 64)
  --workload W   train, attack or eval (default train)
  --batch B      images or rows per step (default 32 for a model, 64 for the MLP)
  --features F   input features (default 256)
  --hidden H     hidden units (default 512)
  --classes K    output classes (default 10)
  --steps S      steps profiled (default 3 for a model, 10 for the MLP)
  --trace FILE   also write a Chrome trace (open in chrome://tracing or ui.perfetto.dev)`;

const NUMBERS = { batch: POSITIVE_INT, features: POSITIVE_INT, hidden: POSITIVE_INT, classes: POSITIVE_INT, steps: POSITIVE_INT, 'image-size': POSITIVE_INT };

function writeTrace(file: string | undefined, report: E.ProfileReport): void {
  if (!file) return;
  writeFileAtomic(file, JSON.stringify(report.chromeTrace()));
  console.log(`trace written to ${file} (open in ui.perfetto.dev or chrome://tracing)`);
}

export const profileCommand: Command = {
  summary: 'profile a model\'s training, attack or inference step (or an MLP): per-op GPU time, GFLOP/s, GB/s, op-family shares, Chrome trace',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad profile', {
      args: argv,
      options: {
        batch: { type: 'string' }, features: { type: 'string' }, hidden: { type: 'string' },
        classes: { type: 'string' }, steps: { type: 'string' }, trace: { type: 'string' },
        model: { type: 'string' }, 'image-size': { type: 'string' }, workload: { type: 'string' },
      },
    });
    const num = numberReader('medgrad profile', values, NUMBERS);
    const imageSize = num('image-size', 64); // read first: a bad value is named whatever else is wrong
    if (values.model !== undefined) {
      for (const o of ['features', 'hidden', 'classes'] as const) if (values[o] !== undefined) throw new Error(`medgrad profile: --${o} is an option of the MLP demo, not of --model`);
      const model = values.model as ModelName;
      if (!MODEL_NAMES.includes(model)) throw new Error(`medgrad profile: --model must be one of ${MODEL_NAMES.join(', ')}, got '${values.model}'`);
      const workload = (values.workload ?? 'train') as Workload;
      if (!WORKLOADS.includes(workload)) throw new Error(`medgrad profile: --workload must be one of ${WORKLOADS.join(', ')}, got '${values.workload}'`);
      const o = { model, workload, imageSize, batch: num('batch', 32), steps: num('steps', 3) };
      await E.init();
      const report = await profileModel(o);
      console.log(`${model} ${workload} step at ${o.imageSize} px, batch ${o.batch}, ${o.steps} steps on ${E.getDevice().info.description || E.getDevice().info.vendor}`);
      console.log(report.table());
      console.log('\n' + familyTable(familyShares(report)));
      writeTrace(values.trace, report);
      return 0;
    }
    if (values.workload !== undefined || values['image-size'] !== undefined) throw new Error('medgrad profile: --workload and --image-size need --model');
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
    writeTrace(values.trace, report);
    E.dispose([w1, w2, x, y]);
    return 0;
  },
};
