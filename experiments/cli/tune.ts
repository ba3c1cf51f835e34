// `medgrad tune`: measures the kernel variants a workload uses on this adapter and keeps the
// fastest per shape bucket in the adapter's tune cache, which every later run on the adapter reads.
import * as E from '../../engine/node.js';
import { tune, type TuneRow } from '../../engine/tune.js';
import { createModel, MODEL_NAMES, type ModelName } from '../../nn/models.js';
import type { Command } from './commands.js';
import { numberReader, parseNumberList, parseOptions, POSITIVE_INT } from './args.js';

const USAGE = `usage: medgrad tune [--model NAME] [--image-size S] [--batch B] [--matmul N,N,...] [--reps R] [--dry-run]
  Times every kernel variant this adapter can run, for the shapes of one training step of a
  model (forward, backward) and of square matmuls, and keeps the fastest per shape bucket in the
  adapter's tune cache (${'$'}MEDGRAD_CACHE_DIR, else ~/.cache/medgrad).
  --model NAME     ${MODEL_NAMES.join(', ')} (default resnet8)
  --image-size S   input size in pixels (default 64)
  --batch B        batch size (default 32)
  --matmul N,...   also square matmuls of these sizes (default 256,512)
  --reps R         timed repetitions per variant and batch (default 5)
  --dry-run        measure and print, but do not write the cache`;

const NUMBERS = { 'image-size': POSITIVE_INT, batch: POSITIVE_INT, reps: POSITIVE_INT };

function table(rows: TuneRow[]): string {
  const lines = [`${'kernel'.padEnd(22)}${'bucket'.padEnd(40)}${'chosen'.padEnd(22)}times (ms per dispatch)`];
  for (const r of rows) {
    const times = Object.entries(r.times).map(([v, t]) => `${v} ${t.toFixed(3)}`).join(', ');
    lines.push(`${r.kernel.padEnd(22)}${r.bucket.padEnd(40)}${(r.chosen + (r.chosen === r.previous ? '' : ` (was ${r.previous})`)).padEnd(22)}${times}`);
  }
  return lines.join('\n');
}

export const tuneCommand: Command = {
  summary: 'measure kernel variants on this adapter and keep the fastest in its tune cache',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad tune', {
      args: argv,
      options: {
        model: { type: 'string', default: 'resnet8' }, 'image-size': { type: 'string' }, batch: { type: 'string' },
        matmul: { type: 'string' }, reps: { type: 'string' }, 'dry-run': { type: 'boolean', default: false },
      },
    });
    const num = numberReader('medgrad tune', values, NUMBERS);
    const model = values.model as ModelName;
    if (!MODEL_NAMES.includes(model)) throw new Error(`medgrad tune: --model must be one of ${MODEL_NAMES.join(', ')}, got '${values.model}'`);
    const size = num('image-size', 64), batch = num('batch', 32), reps = num('reps', 5);
    const sizes = values.matmul ? parseNumberList('medgrad tune', 'matmul', values.matmul, POSITIVE_INT) : [256, 512];
    await E.init();
    const engine = E.getEngine();
    const m = createModel(model, { imageSize: size, inChannels: 3, classes: 2, smallInput: size <= 64, seed: 0 });
    const x = E.rand([batch, 3, size, size], { generator: new E.Generator(0) });
    const y = E.randint(0, 2, [batch], { generator: new E.Generator(1) });
    const workload = () => {
      E.tidy(() => { E.crossEntropy(m.forward(x), y).backward(); });
      for (const n of sizes) E.tidy(() => { E.matmul(E.ones([n, n]), E.ones([n, n])); });
    };
    console.log(`tuning ${model} at ${size} px, batch ${batch}, and matmul ${sizes.join(', ')} on ${engine.device.info.description || engine.device.info.vendor}`);
    const rows = await tune(engine, workload, { reps, onProgress: (done, total, r) => console.log(`  [${done}/${total}] ${r.kernel} ${r.bucket}: ${r.chosen}`) });
    console.log(table(rows));
    E.dispose([x, y]);
    m.dispose();
    if (values['dry-run']) { console.log('dry run: the tune cache was not written'); return 0; }
    const where = engine.saveTuning();
    console.log(where ? `choices kept in ${where}` : 'this platform keeps no tune cache');
    return 0;
  },
};
