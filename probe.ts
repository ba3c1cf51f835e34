import * as E from './engine/node.ts';
await E.init();
const x = E.randn([8, 32, 56, 56], { requiresGrad: true }), w = E.randn([64, 32, 3, 3], { requiresGrad: true, std: 0.1 });
const dy = E.randn([8, 64, 56, 56]);
const step = () => E.tidy(() => { E.grad(E.sum(E.mul(E.conv2d(x, w, undefined, { padding: 'same' }), dy)), [x, w]); });
step(); await E.sync();
const r = await E.profile(() => { step(); step(); });
console.log(r.table());
process.exit(0);
