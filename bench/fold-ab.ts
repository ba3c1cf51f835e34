// Eval-mode conv-BN folding, A/B in one process: the same model and batch with ModelOptions.foldBatchNorm on and off,
// interleaved; GPU time (timestamp queries) per kernel as the minimum over the repetitions (robust to a shared
// machine's spikes), summed, and the largest ops. Usage: npx tsx bench/fold-ab.ts [REPS]
import * as E from '../engine/node.js';
import { createModel, setFoldBatchNorm } from '../nn/models.js';
import { freeze, inputGradient } from '../experiments/attacks/gradient.js';
await E.init();
const reps = Number(process.argv[2] ?? 6);
for (const [name, batch] of [['resnet8', 32], ['cbr-larget', 8]] as const) {
  const model = createModel(name, { imageSize: 32, seed: 1, smallInput: name === 'cbr-larget' });
  const x = E.rand([batch, 3, 32, 32], { generator: new E.Generator(2) });
  const y = E.randint(0, 2, [batch], { generator: new E.Generator(3) });
  freeze(model);
  const work = {
    gradient: async () => { E.dispose(E.tidy(() => inputGradient(model, x, y, null, 'ce'))); await E.sync(); },
    eval: async () => { E.noGrad(() => E.tidy(() => { model.forward(x); })); await E.sync(); },
  };
  for (const [w, f] of Object.entries(work)) {
    const mins: Record<string, Map<string, number>> = { on: new Map(), off: new Map() };
    const counts: Record<string, number> = {};
    for (const m of ['on', 'off']) { setFoldBatchNorm(model, m === 'on'); await f(); }
    for (let r = 0; r < reps; r++) {
      for (const m of r % 2 ? ['on', 'off'] : ['off', 'on']) {
        setFoldBatchNorm(model, m === 'on');
        const rep = await E.profile(f);
        const seen = new Map<string, number>();
        for (const e of rep.events) {
          const i = seen.get(e.label) ?? 0; seen.set(e.label, i + 1);
          const key = `${e.label}#${i}`;
          const prev = mins[m]!.get(key);
          mins[m]!.set(key, prev === undefined ? e.durNs / 1e6 : Math.min(prev, e.durNs / 1e6));
        }
        counts[m] = rep.events.length;
      }
    }
    const tot = (m: string) => [...mins[m]!.values()].reduce((a, b) => a + b, 0);
    console.log(`${w}/${name}-32px-b${batch}: GPU time (sum over kernels of the min over ${reps} reps) folded ${tot('on').toFixed(1)} ms (${counts.on} kernels), unfolded ${tot('off').toFixed(1)} ms (${counts.off} kernels), ratio ${(tot('off') / tot('on')).toFixed(2)}x`);
    const fam = (m: string) => { const by = new Map<string, number>(); for (const [k, v] of mins[m]!) { const op = k.split(' ')[0]!; by.set(op, (by.get(op) ?? 0) + v); } return [...by].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', '); };
    console.log(`   folded: ${fam('on')}\n   unfolded: ${fam('off')}`);
  }
  model.dispose(); E.dispose([x, y]);
}
process.exit(0);
