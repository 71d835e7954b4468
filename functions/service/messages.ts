/**
 * Queue messages of the shard pipeline. They carry ids only; every input and output lives in D1
 * and R2 (a Queue message is at most 128 KB).
 */
export type ShardMessage =
  /** Replay the run: fan out its next phase, or complete it. */
  | { kind: 'advance'; runId: string }
  /** Execute one shard of a phase of a run. */
  | { kind: 'shard'; runId: string; phase: string; idx: number }
  /** Score a submission whose runs are all complete. */
  | { kind: 'finalize'; submissionId: string };

/** A readable name for logs and dead-letter reasons. */
export function describeMessage(m: ShardMessage): string {
  switch (m.kind) {
    case 'advance':
      return `advance run ${m.runId}`;
    case 'shard':
      return `shard ${m.idx} of phase '${m.phase}' of run ${m.runId}`;
    case 'finalize':
      return `finalize submission ${m.submissionId}`;
  }
}
