// `medgrad models`: the study's architectures with parameter counts and forward FLOPs per
// image for a given input. FLOPs are those the kernels declare, summed over one profiled
// forward pass of a single image (convolutions and matmuls at 2 per multiply-add).
import * as E from '../../engine/node.js';
import { createModel, MODEL_NAMES } from '../../nn/models.js';
import type { Command } from './commands.js';
import { numberReader, parseOptions, POSITIVE_INT } from './args.js';

const USAGE = `usage: medgrad models [--image-size N] [--channels C] [--classes K] [--small-input] [--json]
  Lists CBR-LargeT and ResNet-8/20/32/50 with their parameter counts (total, counting batch-norm
  statistics as Keras does, and trainable) and forward FLOPs per image.
  --image-size N   input side in pixels (default 224)
  --channels C     input channels (default 3)
  --classes K      output classes (default 2)
  --small-input    the small-input variants (CBR-LargeT 'same' padding, ResNet global pooling);
                   needed below 217 px for CBR-LargeT and below 32 px for the ResNets
  --json           print JSON`;

const NUMBERS = { 'image-size': POSITIVE_INT, channels: POSITIVE_INT, classes: POSITIVE_INT };

export const modelsCommand: Command = {
  summary: 'list the study\'s architectures: parameters and forward FLOPs per image',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad models', {
      args: argv,
      options: {
        'image-size': { type: 'string' }, channels: { type: 'string' }, classes: { type: 'string' },
        'small-input': { type: 'boolean', default: false }, json: { type: 'boolean', default: false },
      },
    });
    const num = numberReader('medgrad models', values, NUMBERS);
    const size = num('image-size', 224), channels = num('channels', 3), classes = num('classes', 2);
    await E.init();
    const rows = [];
    for (const name of MODEL_NAMES) {
      try {
        const m = createModel(name, { imageSize: size, inChannels: channels, classes, smallInput: values['small-input'] });
        m.eval();
        const x = E.zeros([1, channels, size, size]);
        const report = await E.profile(() => E.noGrad(() => E.tidy(() => { m.forward(x); })));
        const flops = report.events.reduce((s, e) => s + e.flops, 0);
        rows.push({ model: name, ...m.parameterCount(), flops });
        E.dispose(x); m.dispose();
      } catch (e) {
        rows.push({ model: name, error: (e as Error).message.replace(/^medgrad: /, '') });
      }
    }
    if (values.json) { console.log(JSON.stringify({ imageSize: size, channels, classes, models: rows }, null, 2)); return 0; }
    console.log(`input ${channels}x${size}x${size}, ${classes} classes${values['small-input'] ? ', small-input variants' : ''}`);
    console.log(`${'model'.padEnd(12)}${'parameters'.padStart(12)}${'trainable'.padStart(12)}${'MFLOPs/image'.padStart(15)}`);
    for (const r of rows) {
      if ('error' in r) console.log(`${r.model.padEnd(12)}  ${r.error}`);
      else console.log(`${r.model.padEnd(12)}${r.total.toLocaleString('en-US').padStart(12)}${r.trainable.toLocaleString('en-US').padStart(12)}${(r.flops / 1e6).toFixed(1).padStart(15)}`);
    }
    return 0;
  },
};
