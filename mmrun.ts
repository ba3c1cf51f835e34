import * as E from '/work/main/engine/node.ts';
import { runtime } from '/work/main/engine/context.ts';
import { registerShaders } from '/work/main/engine/kernels/shaders.ts';
import { packParams } from '/work/main/engine/ops/launch.ts';
import { readFileSync } from 'node:fs';
await E.init();
const rt = runtime();
const [file, wgx, wgy, tm, tnv, ...ns] = process.argv.slice(2);
let src = readFileSync(file!, 'utf8').replaceAll('WGX', wgx!).replaceAll('WGY', wgy!).replaceAll('TM_C', tm!).replace('const TNV: u32 = 2u;', `const TNV: u32 = ${tnv}u;`);
registerShaders({ exp: src });
const k = rt.kernel('exp', 'matmul');
for (const n of (ns.length ? ns : ['1024']).map(Number)) {
  const a = E.randn([n, n]), b = E.randn([n, n]);
  const c = E.zeros([n, n]);
  const run = () => rt.dispatch(k, { op: 'mm', label: 'mm', params: packParams([n, n, n, 1, 0, n, 1, 0, 0, n, 1, 0]), buffers: { c: c.buffer, a: a.buffer, b: b.buffer },
    workgroups: [Math.ceil(n / 4 / +tnv! / +wgx!), Math.ceil(n / +tm! / +wgy!), 1] });
  run(); await E.sync();
  const ref = E.matmul(a, b);
  const d = await E.abs(E.sub(ref, c)).max().item();
  const reps = 3;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run();
  await E.sync();
  const dt = (performance.now() - t0) / reps;
  console.log(file, `wg ${wgx}x${wgy} tm ${tm} tnv ${tnv}`, n, dt.toFixed(1), 'ms', (2 * n ** 3 / dt / 1e6).toFixed(2), 'GFLOP/s', 'maxerr', d.toExponential(1));
}
process.exit(0);
