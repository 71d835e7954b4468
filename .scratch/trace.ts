import { runOnWorkers } from '../cli/workers.ts';
import { recipeFromTemplate } from '../core/recipe/templates.ts';
const recipe = recipeFromTemplate('industrial-vision', 'fmnist-resnet', 'ascend310');
const t0 = performance.now();
const r = await runOnWorkers(recipe, {
  workers: 2, shards: 2, validate: true, cacheDir: process.argv[2]!,
  onShard: (phase, index, s) => console.log(`${((performance.now() - t0) / 1000).toFixed(2)} ${phase}#${index} ${s.seconds.toFixed(2)}s`),
});
console.log(r.phases.map((p) => `${p.phase} ${p.seconds}`).join(', '));
console.log('total', ((performance.now() - t0) / 1000).toFixed(2));
