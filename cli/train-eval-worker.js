// worker_threads entry of cli/train-eval.ts: registers tsx like cli/bin.js, then runs the worker.
import { register } from 'tsx/esm/api';

register();
await import('./train-eval-worker.ts');
