import { describe, expect, it } from 'vitest';
import { compareMetric } from '../evaluate/evaluate.ts';
import type { PipelineResult } from '../pipeline/run.ts';
import type { Recipe } from '../recipe/schema.ts';
import { parseRecipe } from '../recipe/schema.ts';
import { type LayerSignature, MemoryKnowledgeBase, SIMILAR, similarity } from './knowledge-base.ts';
import { defaultSuggestions, feedbackLoop, type LayerDeviation, layerCostPoints } from './loop.ts';

const recipe = parseRecipe({
  version: 1,
  name: 'poor',
  task: 't',
  target: 'ascend310',
  sensitivity: { enabled: false },
  strategies: { high: { method: 'kl' }, medium: { method: 'kl' }, low: { method: 'kl' } },
  format: { biasCorrection: false },
});

const LAYERS = ['a', 'b', 'c'];

/**
 * A fake host: INT8 top-1 is 0.90 minus 3 points per layer on max, 2 on KL, 1 on 'percentile',
 * 0 on 'mse' (layer 'a' costs twice as much).
 */
function host(kb: MemoryKnowledgeBase) {
  let runs = 0;
  const run = async (r: Recipe): Promise<PipelineResult> => {
    runs++;
    let loss = 0;
    const methods: PipelineResult['methods'] = {};
    for (const name of LAYERS) {
      const m = r.layers[name]?.method ?? 'kl';
      methods[name] = { method: m };
      const weight = name === 'a' ? 2 : 1;
      loss += weight * (m === 'max' ? 3 : m === 'kl' ? 2 : m === 'percentile' ? 1 : 0);
    }
    const int8 = Math.round((0.9 - loss / 100) * 1e6) / 1e6;
    return {
      task: 't',
      target: 'ascend310',
      recipe: r,
      methods,
      layers: LAYERS.map((name) => ({ name, kind: 'conv' })),
      evaluation: {
        fp32: { top1: 0.9 },
        int8: { top1: int8 },
        comparison: compareMetric('top1', { top1: 0.9 }, { top1: int8 }),
        samples: 100,
      },
    } as unknown as PipelineResult;
  };
  const locate = async (r: PipelineResult): Promise<LayerDeviation[]> =>
    LAYERS.map((name) => ({
      name,
      sqnrDb: (r.methods[name]?.method === 'kl' ? 10 : 40) + (name === 'a' ? 0 : 5),
      agreement: null,
    })).sort((x, y) => x.sqnrDb - y.sqnrDb);
  return {
    host: { run, locate, kb, runId: 'test', now: () => '2026-01-01T00:00:00Z' },
    runs: () => runs,
  };
}

describe('feedback loop', () => {
  it('suggests another method, a wider clip, then float for a KL layer', () => {
    expect(defaultSuggestions({ method: 'kl' }).map((s) => s.label)).toEqual([
      'mse',
      'percentile 99.99 (wider clip)',
      'kl-smooth',
      'max (widest clip)',
      'keep in float',
    ]);
  });

  it('rates similar layers by kind, method and position', () => {
    const sig: LayerSignature = {
      task: 't',
      target: 'ascend310',
      layer: 'a',
      kind: 'conv',
      grouped: false,
      position: 'first',
      method: 'kl',
      weights: 'per-tensor',
    };
    expect(similarity(sig, sig)).toBe(1);
    expect(similarity(sig, { ...sig, task: 'u', layer: 'x' })).toBe(0.85);
    expect(similarity(sig, { ...sig, kind: 'gemm' })).toBeLessThan(SIMILAR + 0.2);
  });

  it('recovers the worst layer first, keeps only what recovers, and records every try', async () => {
    const kb = new MemoryKnowledgeBase();
    const h = host(kb);
    const report = await feedbackLoop(recipe, h.host, { rounds: 2, layersPerRound: 1 });
    // 2 + 2 + 4 = 8 points lost; round 1 fixes 'a' (4 points) with mse, round 2 fixes 'b'.
    expect(report.lossBefore).toBe(8);
    expect(report.rounds.map((r) => r.lossAfter)).toEqual([4, 2]);
    expect(report.rounds[0]!.tries[0]!.changes[0]!.layer).toBe('a');
    expect(report.recoveredFraction).toBe(0.75);
    expect(report.recipeAfter.layers).toEqual({ a: { method: 'mse' }, b: { method: 'mse' } });
    expect(report.evidence.every((e) => e.storedInKnowledgeBase && e.requantized)).toBe(true);
    expect((await kb.entries()).map((e) => [e.signature.layer, e.outcome.kept])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    expect(h.runs()).toBe(3);
  });

  it('revisits only layers that cost more than the threshold on their own', async () => {
    const h = host(new MemoryKnowledgeBase());
    // Each layer's own cost as the sensitivity pass measures it (agreement with the float
    // path): on KL, 'a' 4 points, 'b' and 'c' 1.5; after a fix, nothing.
    const locate = async (r: PipelineResult): Promise<LayerDeviation[]> =>
      (await h.host.locate(r)).map((d) => ({
        ...d,
        agreement: r.methods[d.name]?.method !== 'kl' ? 1 : d.name === 'a' ? 0.96 : 0.985,
      }));
    expect(layerCostPoints({ name: 'a', sqnrDb: 10, agreement: 0.96 })).toBe(4);
    expect(layerCostPoints({ name: 'x', sqnrDb: 10, agreement: null })).toBeNull();
    const report = await feedbackLoop(
      recipe,
      { ...h.host, locate },
      { rounds: 3, layersPerRound: 1, minLayerCostPoints: 2 },
    );
    expect(report.rounds.map((r) => r.tries[0]!.changes.map((c) => c.layer))).toEqual([['a']]);
    expect(report.lossAfter).toBe(4);
    expect(report.stopped).toBe('no layer left costs more than 2 points on its own');
    // Without the bar the same loop goes on to 'b' and 'c', which cost 1.5 points each.
    const all = await feedbackLoop(
      recipe,
      { ...host(new MemoryKnowledgeBase()).host, locate },
      { rounds: 3, layersPerRound: 1 },
    );
    expect(all.rounds).toHaveLength(3);
  });

  it('discards a change that does not recover and tries the next one', async () => {
    const kb = new MemoryKnowledgeBase();
    const h = host(kb);
    // A knowledge base that (wrongly) recommends max for such layers: tried first, discarded.
    await kb.record({
      id: 'old',
      at: '2025-01-01T00:00:00Z',
      recipe: 'x',
      signature: {
        task: 't',
        target: 'ascend310',
        layer: 'a',
        kind: 'conv',
        grouped: false,
        position: 'first',
        method: 'kl',
        weights: 'per-channel',
      },
      deviation: { sqnrDb: 10, agreement: null, lossPoints: 1 },
      suggestion: { label: 'max', override: { method: 'max' } },
      outcome: { lossBefore: 1, lossAfter: 0.5, recoveredPoints: 0.5, kept: true, jointWith: [] },
    });
    const report = await feedbackLoop(recipe, h.host, { rounds: 1, layersPerRound: 1 });
    const tries = report.rounds[0]!.tries;
    expect(tries.map((t) => [t.changes[0]!.suggestion.label, t.kept])).toEqual([
      ['max', false],
      ['mse', true],
    ]);
    expect(tries[0]!.changes[0]!.fromKnowledgeBase).toBe(true);
  });

  it('starts a fresh run of the same recipe from the fix the knowledge base holds', async () => {
    const kb = new MemoryKnowledgeBase();
    await feedbackLoop(recipe, host(kb).host, { rounds: 1, layersPerRound: 1 });
    // Consulted for similar layers: the first try on 'a' is the knowledge base's fix.
    const similar = await feedbackLoop(recipe, host(kb).host, {
      rounds: 1,
      layersPerRound: 1,
      startFromKnownFixes: false,
    });
    const first = similar.rounds[0]!.tries[0]!;
    expect(first.changes[0]).toMatchObject({ layer: 'a', fromKnowledgeBase: true });
    expect(first.kept).toBe(true);
    // A fresh run of the same recipe starts from the fix: its first run already lost 4, not 8.
    const h = host(kb);
    const fresh = await feedbackLoop(recipe, h.host, { rounds: 1, layersPerRound: 1 });
    expect(fresh.startedFrom.map((c) => [c.layer, c.suggestion.label])).toEqual([['a', 'mse']]);
    expect(fresh.lossBefore).toBe(4);
    expect(fresh.rounds[0]!.tries[0]!.changes[0]!.layer).toBe('b');
  });
});
