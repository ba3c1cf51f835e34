// The page: `npm run web` serves it on loopback, `npm run web:build` writes a static folder
// (experiments/web/dist) that any static host can serve. It imports the engine, nn and the
// attacks from the same source files as Node, and the shaders from the same .wgsl files.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('.', import.meta.url));
const repo = fileURLToPath(new URL('../..', import.meta.url));

export default defineConfig({
  root,
  base: './',
  publicDir: 'public',
  server: { host: '127.0.0.1', port: 5173, strictPort: false, fs: { allow: [repo] } },
  preview: { host: '127.0.0.1' },
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
});
