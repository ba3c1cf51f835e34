// The named studies. `quick` is the project's main job and `pneumonia` the CPU-sized
// reproduction; `derm` and `evidence` are sized from measured costs for this machine (the
// arithmetic is beside each and in experiments/RESULTS.md); `paper-chest` and `paper-derm` are
// the protocol exactly (../shared/docs/protocol.md), for a cluster (`medgrad study --plan`
// prices them). The presets that read ../shared/datasets stop at once, naming the path, when
// it is missing (checkDatasets in config.ts).
import { attackConfig, type AttackConfig, parseEps } from '../attacks/spec.js';
import type { DatasetConfig, StudyConfig } from './config.js';

/** The paper's two attacks, as it ran them (20 steps of eps/10 for PGD). */
export const paperAttacks = (pgdSteps = 20): AttackConfig[] => [attackConfig('fgsm-ll'), attackConfig('pgd-ll', { steps: pgdSteps })];

/**
 * The strong suite, cheap attacks first: FGSM on CE and on the margin, PGD and APGD on both
 * losses with the same budget (so that APGD can be checked against PGD), then Square on the
 * images they all left correct. `steps` x `restarts` is each gradient attack's budget.
 */
export function strongSuite(steps: number, restarts: number, queries: number): AttackConfig[] {
  const g = { steps, restarts };
  return [
    attackConfig('fgsm'), attackConfig('fgsm-margin'), attackConfig('pgd', g), attackConfig('pgd-margin', g),
    attackConfig('apgd-ce', g), attackConfig('apgd-margin', g), attackConfig('square', { steps: queries }),
  ];
}


/** The protocol's 29 epsilons (1/255 units): 0, 0.01..0.09, 0.1..0.9, 1..9, 10. */
export const PAPER_EPS = parseEps(['0', ...[1, 2, 3, 4, 5, 6, 7, 8, 9].flatMap((k) => [k / 100, k / 10, k].map(String)), '10']).sort((a, b) => a - b);

/** The protocol's seeds (the split's random_state, and the seed of everything else in a run). */
const PROTOCOL_SEEDS = [127, 95, 14, 19, 77, 42, 33, 3, 215, 28];

const CHEST = '../shared/datasets/chest_xray_224';
const DERM = '../shared/datasets/dermoscopy_isic_180';
const ALL_MODELS: StudyConfig['models'] = ['cbr-larget', 'resnet8', 'resnet20', 'resnet32', 'resnet50'];
/** The protocol's Madry training attacks: chest 3/255 in 7 steps, dermoscopy 1/255 in 5, steps of eps/10. */
const CHEST_ADV = { eps: 3 / 255, steps: 7, stepFraction: 0.1 };
const DERM_ADV = { eps: 1 / 255, steps: 5, stepFraction: 0.1 };

/**
 * The protocol exactly, for one dataset: 224 px, the original architectures (valid padding,
 * 8x8 pooling head), its 71/14.5/14.5 split and ten seeds, 100 epochs of Adam (1e-4 after 80)
 * at batch 32 with Keras' batch-norm momentum, the best validation epoch kept, 150 attacked
 * images per class, the 29-point grid, Madry training of the four ResNets at the paper's eps
 * (every seed, so Table 2 gets intervals; "until the loss stops improving" is read as 3 epochs
 * without a lower training loss), then the strong suite at full budget.
 */
function paper(name: string, dataset: DatasetConfig): StudyConfig {
  return {
    name, datasets: [dataset], models: ALL_MODELS, smallInput: false, seeds: PROTOCOL_SEEDS,
    train: { epochs: 100, batchSize: 32, lr: 1e-3, bnMomentum: 0.99, lrDropEpoch: 80, augment: true },
    adversarial: { models: ['resnet8', 'resnet20', 'resnet32', 'resnet50'], seeds: PROTOCOL_SEEDS.length, epochs: 100, lr: 1e-3, patience: 3 },
    // AutoAttack's standard budget: 100 iterations, one run (restarts only revisit the images not yet broken).
    attacks: [...paperAttacks(), ...strongSuite(100, 1, 1000)], transfer: true,
    eps: PAPER_EPS, sanityEps: 64 / 255, recommendMargin: 2, attackBatch: 32,
  };
}

export const PRESETS: Record<string, () => StudyConfig> = {
  quick: () => ({
    name: 'quick',
    datasets: [{
      name: 'chest', data: 'generated:chest', imageSize: 24, channels: 3, count: 480, maxTrain: 288, perClass: 8,
      adversarial: { eps: 3 / 255, steps: 3, stepFraction: 0.4 }, tableEps: 2 / 255,
    }],
    models: ['cbr-larget', 'resnet8', 'resnet20', 'resnet32', 'resnet50'],
    smallInput: true, seeds: [127],
    // Runs of a few dozen steps need responsive batch-norm statistics (Keras momentum 0.5, not 0.99).
    train: { epochs: 3, batchSize: 16, lr: 1e-3, bnMomentum: 0.5, lrDropEpoch: null, augment: true },
    adversarial: { models: ['resnet8'], seeds: 1, epochs: 1, lr: 1e-3, patience: 1 },
    // The strong suite at a budget that keeps the main job under 15 minutes on two CPU cores.
    attacks: [...paperAttacks(5), ...strongSuite(20, 1, 50)], transfer: true,
    eps: parseEps('0,2,8'), sanityEps: 64 / 255, recommendMargin: 5, attackBatch: 32,
  }),
  pneumonia: () => ({
    name: 'pneumonia',
    datasets: [{
      name: 'pneumoniamnist', data: '../shared/datasets/pneumoniamnist/pneumoniamnist.npz', imageSize: 28, channels: 3,
      maxTrain: 300, maxVal: 150, perClass: 10,
      adversarial: { eps: 3 / 255, steps: 7, stepFraction: 0.1 }, tableEps: 1 / 255,
    }],
    models: ['cbr-larget', 'resnet8', 'resnet20', 'resnet32', 'resnet50'],
    smallInput: true, seeds: [127],
    train: { epochs: 3, batchSize: 16, lr: 1e-3, bnMomentum: 0.5, lrDropEpoch: 2, augment: true },
    adversarial: { models: ['resnet8', 'resnet20'], seeds: 1, epochs: 2, lr: 1e-3, patience: 1 },
    // APGD and PGD at 30 iterations with one run each (AutoAttack's standard version also runs APGD
    // once), Square at 200 queries on the survivors, one seed: the budget that fits this preset in
    // about an hour on two cores (CBR-LargeT, robust on most images, takes half of it). More seeds
    // are one key of a config ("seeds": [127, 95, 14]).
    attacks: [...paperAttacks(), ...strongSuite(30, 1, 200)], transfer: true,
    eps: parseEps('0,1,4'), sanityEps: 64 / 255, recommendMargin: 2, attackBatch: 20,
  }),
  // Dermoscopy (685 images: 486 train / 99 val / 100 test in the protocol's split) with all five
  // models, five of the protocol's seeds and every test image attacked. Image size: 32 px, the
  // smallest at which the ResNets are the protocol's own (their 8x8 pooling head is then the
  // global pool of the small-input variant; only CBR-LargeT runs 'same'-padded). No size fits a
  // few hours on this machine (2 shared cores, lavapipe, about 4 GFLOP/s when quiet):
  // `medgrad study --preset derm --plan` prices this preset at 220-335 TFLOP, 14-22 hours
  // (experiments/RESULTS.md), most of it 500 attacked images x 310-594 forward passes x seven
  // models. Work goes with the side squared: 16 px would still be 3.6-5.4 hours if the rate held
  // (it falls at small sizes), with lesions a few pixels wide.
  derm: () => ({
    name: 'derm',
    datasets: [{ name: 'derm', data: DERM, imageSize: 32, channels: 3, split: 'protocol', perClass: 'all', adversarial: DERM_ADV, tableEps: 1 / 255 }],
    models: ALL_MODELS, smallInput: true, seeds: PROTOCOL_SEEDS.slice(0, 5),
    // The protocol's optimiser, batch and batch-norm momentum (16 steps an epoch, so 0.99 settles
    // within a few epochs); early stopping after 3 epochs without a better validation accuracy.
    // bnRecalibration: see the evidence preset (with 16 steps an epoch the lag is worse still).
    train: { epochs: 15, batchSize: 32, lr: 1e-3, bnMomentum: 0.99, lrDropEpoch: null, augment: true, patience: 3, bnRecalibration: 1024 },
    adversarial: { models: ['resnet8', 'resnet20'], seeds: 5, epochs: 5, lr: 1e-3, patience: 2 },
    // The paper's attacks as it ran them, then the strong suite at 10 iterations and 100 queries
    // (at these eps two-class models fall within a few steps; APGD is checked against PGD of the
    // same budget), at the paper's dermoscopy points 0.1/255 (Table 1) and 1/255 (Table 2).
    attacks: [...paperAttacks(), ...strongSuite(10, 1, 100)], transfer: true,
    eps: parseEps('0,0.1,1'), sanityEps: 64 / 255, recommendMargin: 2, attackBatch: 100,
  }),
  // The paper's central contrast (CBR-LargeT vs ResNet-8 vs ResNet-20) at the least cost that
  // meets the evidence it needs: PneumoniaMNIST at its native 28 px (the Kermany images, the
  // file's own split: 4,708 train / 524 val / 624 test, so 100 attacked images per class fit
  // in the test split, where the dermoscopy test split has about 50), every model trained on the
  // full training split until validation accuracy stops improving (2 epochs of patience, 12 at
  // most), three seeds, 100 images per class each, the strong suite at 1/255 and 4/255. ResNet-32/50 do not
  // fit. Sizing (experiments/RESULTS.md, `--plan`): per seed, a full-split epoch of CBR-LargeT
  // is 2.8 TFLOP (189 MFLOP per 28 px image) and its attacks 8-19 TFLOP (200 images x 222-506
  // passes): 180-226 TFLOP in all, 13-16 hours at this machine's quieter 4 GFLOP/s, so it does
  // not fit 3 hours, and no configuration meeting these requirements does. Resumable across sittings.
  evidence: () => ({
    name: 'evidence',
    datasets: [{
      name: 'pneumoniamnist', data: '../shared/datasets/pneumoniamnist/pneumoniamnist.npz', imageSize: 28, channels: 3, split: 'own', perClass: 100,
      adversarial: CHEST_ADV, tableEps: 1 / 255,
    }],
    models: ['cbr-larget', 'resnet8', 'resnet20'], smallInput: true, seeds: [127, 95, 14],
    // Batch-norm statistics recomputed on 1,024 training images before each validation: with
    // momentum 0.99 the running averages lag the weights by ~100 steps, and the first run of
    // this preset had CBR-LargeT predict one class for every image in inference mode (74.2% on
    // validation, the majority class, after two epochs at 93% training accuracy; 95.6% with
    // recalibrated statistics). Early stopping would have kept that model.
    train: { epochs: 12, batchSize: 32, lr: 1e-3, bnMomentum: 0.99, lrDropEpoch: null, augment: true, patience: 2, bnRecalibration: 1024 },
    adversarial: null,
    // The strong suite at 10 iterations (enough at these eps for two classes; APGD is checked
    // against PGD of the same budget) and Square at 100 queries on the survivors.
    attacks: strongSuite(10, 1, 100), transfer: true,
    eps: parseEps('0,1,4'), sanityEps: 64 / 255, recommendMargin: 2, attackBatch: 100,
  }),
  // The protocol pools Kermany's folders and splits by image (not by patient, though some
  // patients have several images): 'protocol' here, as the paper did.
  'paper-chest': () => paper('paper-chest', {
    name: 'chest', data: CHEST, imageSize: 224, channels: 3, split: 'protocol', perClass: 150, adversarial: CHEST_ADV, tableEps: 1 / 255,
  }),
  // 180 px images resized to 224 (bicubic), as the protocol resizes every dataset. Table 1's
  // dermoscopy column is at 0.1/255 (Table 2's at 1/255; both are in the grid).
  'paper-derm': () => paper('paper-derm', {
    name: 'derm', data: DERM, imageSize: 224, channels: 3, split: 'protocol', perClass: 150, adversarial: DERM_ADV, tableEps: 0.1 / 255,
  }),
};
