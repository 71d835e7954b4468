/**
 * The feedback loop's knowledge base: what was tried on which layer, and whether it recovered
 * accuracy, as (deviation, suggestion, outcome) records. Later runs consult it first for layers
 * similar to the one that deviates. Behind an interface: the CLI stores it in a JSON file
 * (cli/knowledge-base-file.ts), the service will store it in D1. Pure.
 */
import type { TargetId } from '../formats/targets.ts';
import type { Recipe } from '../recipe/schema.ts';

/** What a layer looks like, for matching similar layers across runs and models. */
export interface LayerSignature {
  task: string;
  target: TargetId;
  layer: string;
  kind: 'conv' | 'gemm' | 'matmul';
  /** Grouped (e.g. depthwise) convolution. */
  grouped: boolean;
  /** Where the layer sits among the quantized layers. */
  position: 'first' | 'middle' | 'last';
  /** Calibration method that produced the deviation ("percentile 99.99" with its value). */
  method: string;
  /** Weight granularity of the recipe. */
  weights: 'per-channel' | 'per-tensor';
}

/** A proposed change: a per-layer recipe override (the declarative way to express a fix). */
export interface Suggestion {
  /** E.g. "mse", "percentile 99.999 (wider clip)", "keep in fp16". */
  label: string;
  override: Recipe['layers'][string];
}

/** One record: a layer's deviation, the suggestion tried, and what it did. */
export interface KnowledgeEntry {
  /** Stable id: run, round, try and layer. */
  id: string;
  /** ISO time of the record. */
  at: string;
  recipe: string;
  signature: LayerSignature;
  deviation: {
    /** Output SQNR with this layer alone quantized (dB, lower = worse). */
    sqnrDb: number;
    /** Prediction agreement with this layer alone quantized (classifiers), else null. */
    agreement: number | null;
    /** The run's loss before the change (points). */
    lossPoints: number;
  };
  suggestion: Suggestion;
  outcome: {
    lossBefore: number;
    lossAfter: number;
    /** lossBefore - lossAfter (points); positive = recovered. */
    recoveredPoints: number;
    /** The change was kept (it recovered). */
    kept: boolean;
    /** Other layers changed in the same try (the outcome is theirs jointly). */
    jointWith: string[];
  };
}

/** A match from {@link KnowledgeBase.lookup}. */
export interface KnowledgeMatch {
  entry: KnowledgeEntry;
  similarity: number;
}

/** Where the loop keeps what it learned. */
export interface KnowledgeBase {
  /** Stores one record. */
  record(entry: KnowledgeEntry): Promise<void>;
  /** Every record, oldest first. */
  entries(): Promise<KnowledgeEntry[]>;
  /**
   * Records of changes that were kept, on layers similar to `signature` (similarity >=
   * `minSimilarity`, default {@link SIMILAR}), most similar first, then most recovered.
   */
  lookup(signature: LayerSignature, minSimilarity?: number): Promise<KnowledgeMatch[]>;
}

/** Default similarity for a match. */
export const SIMILAR = 0.6;

/**
 * Similarity of two layer signatures in [0, 1]: layer kind 0.25, grouped 0.1, calibration
 * method that deviated 0.2, weight granularity 0.1, target 0.1, position 0.1, task 0.1, same
 * layer name 0.05. A different kind caps the score below {@link SIMILAR}.
 */
export function similarity(a: LayerSignature, b: LayerSignature): number {
  const w = (x: boolean, weight: number) => (x ? weight : 0);
  const s =
    w(a.kind === b.kind, 0.25) +
    w(a.grouped === b.grouped, 0.1) +
    w(a.method === b.method, 0.2) +
    w(a.weights === b.weights, 0.1) +
    w(a.target === b.target, 0.1) +
    w(a.position === b.position, 0.1) +
    w(a.task === b.task, 0.1) +
    w(a.task === b.task && a.layer === b.layer, 0.05);
  return Math.round(s * 1000) / 1000;
}

/** Matches over a list of records (shared by every store). */
export function lookupEntries(
  entries: readonly KnowledgeEntry[],
  signature: LayerSignature,
  minSimilarity = SIMILAR,
): KnowledgeMatch[] {
  return entries
    .filter((e) => e.outcome.kept && e.outcome.recoveredPoints > 0)
    .map((entry) => ({ entry, similarity: similarity(entry.signature, signature) }))
    .filter((m) => m.similarity >= minSimilarity)
    .sort(
      (a, b) =>
        b.similarity - a.similarity ||
        b.entry.outcome.recoveredPoints - a.entry.outcome.recoveredPoints ||
        a.entry.id.localeCompare(b.entry.id),
    );
}

/** An in-memory knowledge base (tests, and the base of file stores). */
export class MemoryKnowledgeBase implements KnowledgeBase {
  protected list: KnowledgeEntry[];
  constructor(entries: readonly KnowledgeEntry[] = []) {
    this.list = entries.map((e) => structuredClone(e));
  }
  async record(entry: KnowledgeEntry): Promise<void> {
    this.list = [...this.list.filter((e) => e.id !== entry.id), structuredClone(entry)];
  }
  async entries(): Promise<KnowledgeEntry[]> {
    return this.list.map((e) => structuredClone(e));
  }
  async lookup(signature: LayerSignature, minSimilarity = SIMILAR): Promise<KnowledgeMatch[]> {
    return lookupEntries(this.list, signature, minSimilarity);
  }
}
