#!/usr/bin/env node
// The `medgrad` command. The project runs its TypeScript sources directly through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../experiments/cli/main.ts');
