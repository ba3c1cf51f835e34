// `medgrad info`: the adapter the engine runs on, its key limits and the features in use.
import { init, OPTIONAL_FEATURES } from '../../engine/node.js';
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
    const features = Object.fromEntries(OPTIONAL_FEATURES.map((f) => [f, device.features.has(f)]));
    if (values.json) {
      console.log(JSON.stringify({ adapter: device.info, limits, features }, null, 2));
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
    console.log(`profiler     ${device.hasTimestamps ? 'GPU timestamps (timestamp-query)' : 'queue-completion timing (no timestamp-query)'}`);
    return 0;
  },
};
