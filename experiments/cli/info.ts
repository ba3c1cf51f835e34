// `medgrad info`: the adapter the engine runs on, its key limits and the features in use.
import { getEngine, init, kernels, OPTIONAL_FEATURES, tuneCacheFile } from '../../engine/node.js';
import { variantFeatures } from '../../engine/kernels/variants.js';
import type { Command } from './commands.js';
import { parseOptions } from './args.js';

const LIMITS = [
  'maxBufferSize', 'maxStorageBufferBindingSize', 'maxComputeWorkgroupStorageSize', 'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage',
] as const;

export const infoCommand: Command = {
  summary: 'show the GPU adapter, its limits and the features the engine uses',
  usage: 'usage: medgrad info [--json]\n  --json  print the same information as JSON',
  numberOptions: {},
  async run(argv) {
    const { values } = parseOptions('medgrad info', { args: argv, options: { json: { type: 'boolean', default: false } } });
    const device = await init();
    const limits = Object.fromEntries(LIMITS.map((k) => [k, device.limits[k]]));
    const features = Object.fromEntries([...OPTIONAL_FEATURES, ...variantFeatures()].map((f) => [f, device.features.has(f)]));
    const policy = getEngine().policy;
    const variants = kernels().map((k) => ({ kernel: k.name, variants: k.variants.map((v) => v.name), runnable: k.variants.filter((v) => policy.supports(v)).map((v) => v.name), tunable: Boolean(k.bucket && k.sample) }));
    const tuned = policy.tuned();
    const tune = { file: tuneCacheFile(device.info), choices: Object.values(tuned).reduce((n, b) => n + Object.keys(b).length, 0) };
    if (values.json) {
      console.log(JSON.stringify({ adapter: device.info, limits, features, kernels: variants, tune }, null, 2));
      return 0;
    }
    const i = device.info;
    console.log(`adapter      ${[i.vendor, i.architecture].filter((x) => x && x !== 'unknown').join(' ') || 'unknown'}`);
    console.log(`description  ${i.description || '-'}`);
    console.log(`backend      ${i.backend}${i.isFallbackAdapter ? ' (fallback adapter)' : ''}`);
    if (/llvmpipe|lavapipe|swiftshader/i.test(`${i.description} ${i.architecture} ${i.vendor}`)) {
      console.log('             (a software rasteriser on the CPU: correct but slow; use a GPU for real runs)');
    }
    console.log('limits');
    for (const [k, v] of Object.entries(limits)) console.log(`  ${k.padEnd(36)}${v}`);
    console.log('features used when present');
    for (const [k, v] of Object.entries(features)) console.log(`  ${k.padEnd(36)}${v ? 'yes' : 'no'}`);
    console.log('kernels (variants this adapter runs / declared; * tunable)');
    for (const k of variants) console.log(`  ${(k.kernel + (k.tunable ? ' *' : '')).padEnd(36)}${k.runnable.join(', ')}${k.runnable.length < k.variants.length ? ` (of ${k.variants.length})` : ''}`);
    console.log(`tune cache   ${tune.file} (${tune.choices} measured choices${tune.choices ? '' : '; `medgrad tune` fills it'})`);
    console.log(`profiler     ${device.hasTimestamps ? 'GPU timestamps (timestamp-query)' : 'queue-completion timing (no timestamp-query)'}`);
    return 0;
  },
};
