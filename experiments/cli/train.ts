// `medgrad train`: trains one of the study's models on a dataset, with validation every
// epoch, the best checkpoint kept, metrics.json, and --resume.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import * as E from '../../engine/node.js';
import { MODEL_NAMES, type ModelName } from '../../nn/models.js';
import { loadDataset } from '../data/load.js';
import { makeSplits, type SplitMode } from '../data/splits.js';
import { classCounts } from '../data/dataset.js';
import { readSidecar } from '../train/checkpoint.js';
import { train, type TrainConfig, type TrainState } from '../train/trainer.js';
import type { Command } from './commands.js';
import { parsePrecision } from '../../nn/amp.js';
import { INT, NON_NEGATIVE, NON_NEGATIVE_INT, numberReader, parseEpsOption, parseOptions, POSITIVE, POSITIVE_INT } from './args.js';

const USAGE = `usage: medgrad train --data PATH|generated:NAME --model NAME --out DIR [options]
       medgrad train --resume DIR
  --data D           a MedMNIST .npz, a folder of class folders (optionally split into
                     train/val/test and with labels.csv), or generated:chest|skin|retina
  --model M          ${MODEL_NAMES.join(' | ')}
  --out DIR          run folder: checkpoints, metrics.json (refuses a folder holding a run)
  --image-size N     side the images are resized to (default 64)
  --epochs E         (default 20)          --batch-size B   (default 32)
  --lr LR            Adam learning rate (default 1e-3); divided by 10 after --lr-drop-epoch
  --lr-drop-epoch K  (default: 80% of the epochs, as the protocol's 80 of 100; 0 = never)
  --seed S           model initialisation, data order and augmentation (default 0)
  --split MODE       protocol (71/14.5/14.5 with --split-seed) | own (the .npz's split)
                     | patient (grouped by labels.csv's patient_id); default: own for .npz,
                     patient where labels.csv has patient ids, protocol otherwise
  --split-seed K     (default 127, the protocol's first seed)
  --small-input      CBR-LargeT 'same' padding / ResNet global pooling: needed below 217 px
                     (CBR-LargeT) and 32 px (ResNets)
  --channels C       1 or 3 model input channels (default 3, the protocol's; grey is repeated)
  --l2 C             Keras-style L2 on ResNet conv kernels (default 1e-4; 0 for CBR-LargeT)
  --bn-momentum M    batch-norm momentum in Keras' convention, the share of the running
                     statistics kept per step (default 0.99, the protocol's); short runs of a
                     few hundred steps want 0.9, or inference-mode statistics lag the weights
  --bn-recalibration N before each validation, batch-norm statistics recomputed for the
                     current weights on N training images (0 = off, the default)
  --no-augment       no random shifts and flips
  --precision P      float32 (default) | mixed: float16 activations (needs the adapter's
                     shader-f16), float32 master weights, dynamic loss scaling
  --count N          generated data: number of images (default 1200)
  --cache DIR        decoded-dataset cache (default ~/.cache/medgrad)
  --skip-bad         skip unreadable images (counted in the log) instead of failing
  --allow-no-groups  split a folder whose labels.csv has no patient ids by image (one patient may land in two splits)
 Madry adversarial training (each batch replaced by its untargeted PGD images):
  --adversarial-from DIR   start from the weights of a standard run of the same model
                     (DIR/best.safetensors); keeps the last epoch; stops when the training
                     loss has not improved for --patience epochs (default 1)
  --adv-eps E        PGD eps in 1/255 units (default 3, the protocol's chest X-ray setting;
                     dermoscopy 1, OCT 10)
  --adv-steps K      PGD steps (default 7; the protocol: 7 chest, 5 dermoscopy and OCT)
  --adv-step F       PGD step as a fraction of eps (default 0.1)`;

const NUMBERS = {
  'image-size': { int: true, min: 8 }, epochs: POSITIVE_INT, 'batch-size': POSITIVE_INT, lr: POSITIVE, 'lr-drop-epoch': NON_NEGATIVE_INT,
  seed: INT, 'split-seed': INT, channels: { int: true, oneOf: [1, 3] }, l2: NON_NEGATIVE, 'bn-momentum': { min: 0, below: 1 }, 'bn-recalibration': NON_NEGATIVE_INT,
  count: { int: true, min: 4 }, 'adv-steps': POSITIVE_INT, 'adv-step': POSITIVE, patience: POSITIVE_INT,
};

export const trainCommand: Command = {
  summary: 'train a model of the study on a dataset (resumable, with metrics and checkpoints)',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad train', {
      args: argv,
      options: {
        data: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, resume: { type: 'string' },
        'image-size': { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' },
        'lr-drop-epoch': { type: 'string' }, seed: { type: 'string' }, split: { type: 'string' }, 'split-seed': { type: 'string' },
        'small-input': { type: 'boolean', default: false }, channels: { type: 'string' }, l2: { type: 'string' },
        'no-augment': { type: 'boolean', default: false }, 'bn-momentum': { type: 'string' }, 'bn-recalibration': { type: 'string' }, precision: { type: 'string' }, count: { type: 'string' }, cache: { type: 'string' }, 'allow-no-groups': { type: 'boolean', default: false }, 'skip-bad': { type: 'boolean', default: false },
        'adversarial-from': { type: 'string' }, 'adv-eps': { type: 'string' }, 'adv-steps': { type: 'string' }, 'adv-step': { type: 'string' }, patience: { type: 'string' },
      },
    });
    let config: TrainConfig, data: string, splitMode: SplitMode, splitSeed: number, count: number, out: string;
    if (values.resume) {
      out = values.resume;
      const s = readSidecar<TrainState & { run: { data: string; split: SplitMode; splitSeed: number; count: number } }>(out).state;
      ({ config } = s);
      ({ data, split: splitMode, splitSeed, count } = s.run);
    } else {
      const num = numberReader('medgrad train', values, NUMBERS);
      const epochs = num('epochs', 20);
      const drop = num('lr-drop-epoch', undefined);
      config = {
        model: values.model as ModelName, imageSize: num('image-size', 64), channels: num('channels', 3), classes: 0,
        smallInput: values['small-input'], epochs, batchSize: num('batch-size', 32), lr: num('lr', 1e-3),
        // The protocol drops the rate at 80 of 100 epochs; 0 means never.
        lrDropEpoch: drop === undefined ? Math.round(epochs * 0.8) : drop > 0 ? drop : null,
        l2: num('l2', values.model === 'cbr-larget' ? 0 : 1e-4), augment: !values['no-augment'], seed: num('seed', 0),
        bnMomentum: 1 - num('bn-momentum', 0.99),
        ...(values.precision !== undefined && { precision: parsePrecision(values.precision, 'medgrad train: --precision') }),
      };
      const recal = num('bn-recalibration', 0);
      if (recal > 0) config.bnRecalibration = recal;
      splitSeed = num('split-seed', 127);
      count = num('count', 1200);
      const adversarial = values['adversarial-from'] ? {
        eps: parseEpsOption('medgrad train', 'adv-eps', values['adv-eps'] ?? '3', '255', { single: true })[0]!,
        steps: num('adv-steps', 7), stepFraction: num('adv-step', 0.1), patience: num('patience', 1),
      } : undefined;
      if (values.split && !['protocol', 'own', 'patient'].includes(values.split)) throw new Error(`medgrad train: --split must be protocol, own or patient, got '${values.split}'`);
      splitMode = (values.split ?? '') as SplitMode;
      if (!values.data || !values.model || !values.out) throw new Error(`medgrad train: --data, --model and --out are required\n\n${USAGE}`);
      if (!MODEL_NAMES.includes(values.model as ModelName)) throw new Error(`medgrad train: unknown --model '${values.model}' (have ${MODEL_NAMES.join(', ')})`);
      if (existsSync(join(values.out, 'checkpoint.json'))) throw new Error(`medgrad train: ${values.out} already holds a run; use --resume ${values.out} or another --out`);
      out = values.out;
      data = values.data;
      if (adversarial) {
        const from = values['adversarial-from']!;
        const side = readSidecar<TrainState>(from);
        if (side.architecture !== config.model) throw new Error(`medgrad train: --adversarial-from ${from} holds a ${side.architecture}, not a ${config.model}`);
        const { patience, ...pgd } = adversarial;
        config.adversarial = pgd;
        config.init = join(from, 'best.safetensors');
        config.selectBy = 'last';
        config.patience = patience;
        // Madry fine-tuning keeps its rate unless a drop is asked for.
        if (drop === undefined) config.lrDropEpoch = null;
      }
    }
    await E.init();
    const ds = await loadDataset(data, {
      imageSize: config.imageSize, channels: 'auto', cacheDir: values.cache ?? join(homedir(), '.cache', 'medgrad'),
      skipBad: values['skip-bad'], allowNoGroups: values['allow-no-groups'], count, seed: 0, log: (l) => console.log(l),
    });
    if (!splitMode) splitMode = ds.split ? 'own' : ds.groups ? 'patient' : 'protocol';
    const splits = makeSplits(ds, splitMode, splitSeed);
    config.classes = ds.classes.length;
    console.log(`data: ${ds.source}; classes ${ds.classes.map((c, i) => `${c}=${classCounts(ds)[i]}`).join(', ')}`);
    console.log(`split: ${splits.kind}: train ${splits.train.length}, val ${splits.val.length}, test ${splits.test.length}`);
    console.log(`model: ${config.model}${config.smallInput ? ' (small-input variant)' : ''}, ${config.channels}x${config.imageSize}x${config.imageSize}, ${config.epochs} epochs, batch ${config.batchSize}, lr ${config.lr}, ${config.precision ?? 'float32'}, on ${E.getDevice().info.description || E.getDevice().info.vendor}`);
    await train(config, { out, ds, splits, resume: Boolean(values.resume), run: { data, split: splitMode, splitSeed, count } });
    console.log(`run folder: ${out} (metrics.json, best.safetensors, checkpoint.json)`);
    return 0;
  },
};
