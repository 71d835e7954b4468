import { describe, expect, it } from 'vitest';
import { AccuracyGuardError, accuracyGuard, compareMetric } from './evaluate.ts';

describe('metric comparison and accuracy guard', () => {
  it('computes points and the floored fraction', () => {
    const c = compareMetric('top1', { top1: 0.9 }, { top1: 0.891 });
    expect(c.lossPoints).toBeCloseTo(0.9, 12);
    expect(c.lossFraction).toBeCloseTo(0.01, 12);
  });
  it('floors a gain at zero loss but keeps the raw value', () => {
    const c = compareMetric('top1', { top1: 0.9 }, { top1: 0.91 });
    expect(c.lossFraction).toBe(0);
    expect(c.rawLossFraction).toBeCloseTo(-0.1 / 9, 12);
  });
  it('the guard passes at the bound and fails above it', () => {
    expect(() => accuracyGuard(compareMetric('f1', { f1: 0.5 }, { f1: 0.49 }), 1.0)).not.toThrow();
    expect(() => accuracyGuard(compareMetric('f1', { f1: 0.5 }, { f1: 0.489 }), 1.0)).toThrow(
      AccuracyGuardError,
    );
  });
});
