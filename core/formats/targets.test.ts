/** Target lookup: exact ids, and the spellings the command line accepts for them. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_TARGET, getTarget, resolveTargetName, TARGETS } from './targets.ts';

describe('resolveTargetName', () => {
  it('returns every id unchanged', () => {
    for (const id of Object.keys(TARGETS)) expect(resolveTargetName(id)).toBe(id);
  });
  it("reads other case and separators, as the seed's `--hardware ascend_310`", () => {
    expect(resolveTargetName('ascend_310')).toBe('ascend310');
    expect(resolveTargetName('Ascend-310P')).toBe('ascend310p');
    expect(resolveTargetName('NVIDIA_T4')).toBe('nvidia-t4');
    expect(resolveTargetName('ascend310p_w4a8')).toBe('ascend310p-w4a8');
    expect(resolveTargetName('cpu wasm')).toBe('cpu-wasm');
  });
  it('names nothing for other words, prototype keys included', () => {
    for (const name of ['h100', 'ascend', 'ascend3100', '', 'toString', '__proto__'])
      expect(resolveTargetName(name)).toBeUndefined();
  });
  it('the default target is the product’s first chip', () => {
    expect(getTarget(DEFAULT_TARGET).name).toMatch(/Ascend 310$/);
  });
});
