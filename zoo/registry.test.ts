import { describe, expect, it } from 'vitest';
import { getTask, TASKS } from './registry.ts';

describe('task registry', () => {
  it('finds tasks by id, each carrying its own manifest', () => {
    for (const [id, task] of Object.entries(TASKS)) {
      expect(getTask(id)).toBe(task);
      expect(task.manifest.id).toBe(id);
    }
    expect(getTask('smoke-fmnist').manifest.splits.evaluation.size).toBe(1000);
  });
  it('rejects an unknown id with the list of known ones', () => {
    expect(() => getTask('nope')).toThrow(/unknown task 'nope' \(known: .*smoke-fmnist/);
    expect(() => getTask('toString')).toThrow(/unknown task 'toString'/);
    // a template's scenario or name given as a task (as the seed's `--task industrial` does)
    expect(() => getTask('industrial')).toThrow(
      /'industrial' is a recipe template's scenario \(industrial-vision\): add --template industrial-vision to a task$/,
    );
    expect(() => getTask('detection')).toThrow(
      /'detection' is a recipe template: add --template detection to a task$/,
    );
  });
});
