// worker_threads entry of cli/workers.ts: registers tsx (TypeScript sources, no build step) like
// cli/bin.js, then runs the shard worker.
import { register } from 'tsx/esm/api';

register();
await import('./shard-worker.ts');
