// `tsx bench/model-params.ts MODEL SIZE`: prints the trainable parameter count of a study model
// built for SIZE px images (bench/gpu.sh passes it to the PyTorch peer, which must build the
// same network).
import { init } from '../engine/node.js';
import { createModel, MODEL_NAMES, type ModelName } from '../nn/models.js';

const [name, size] = process.argv.slice(2);
if (!MODEL_NAMES.includes(name as ModelName) || !(Number(size) >= 1)) {
  console.error(`usage: model-params MODEL SIZE (MODEL one of ${MODEL_NAMES.join(', ')})`);
  process.exit(2);
}
await init();
const m = createModel(name as ModelName, { imageSize: Number(size), smallInput: Number(size) < 32 });
console.log(m.parameterCount().trainable);
m.dispose();
process.exit(0);
