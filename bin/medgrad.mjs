#!/usr/bin/env node
// The `medgrad` command. The project runs its TypeScript sources directly through tsx.
// npm packs this file with the package (a declared bin is always packed), but the command needs
// the repository's experiments/, which the package leaves out: there it says so instead.
import { existsSync } from 'node:fs';

const main = new URL('../experiments/cli/main.ts', import.meta.url);
if (!existsSync(main)) {
  console.error("medgrad: the medgrad command (study, train, attack, ...) runs from a clone of the repository; " +
    "the npm package is the library: import { init, tensor } from 'medgrad'");
  process.exit(1);
}
const { register } = await import('tsx/esm/api');
register();
await import(main.href);
