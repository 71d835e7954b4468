import cliProgress from 'cli-progress';
import type { ShardExecutor } from '../core/pipeline/run.ts';

/** A progress reporter: `update(done, total)` then `stop()`. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * A progress bar on stderr (cli-progress), shown only on a terminal so that `--json` output and
 * CI logs stay clean. `label` names the phase, e.g. "eval fmnist-resnet".
 */
export function progressBar(label: string, enabled = process.stderr.isTTY === true): Progress {
  if (!enabled) return { update() {}, stop() {} };
  const bar = new cliProgress.SingleBar(
    {
      format: `${label.padEnd(28)} {bar} {percentage}% | {value}/{total} | {duration_formatted} elapsed, ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, 0);
        started = true;
      }
      bar.setTotal(total);
      bar.update(done);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

/** Runs a pipeline's shards one after another in this process, counting them on `bar`. */
export function progressExecutor(bar: Progress): ShardExecutor {
  let done = 0;
  return async (_phase, inputs, run) => {
    const out = [];
    for (const [i, input] of inputs.entries()) {
      out.push(await run(input, i));
      bar.update(++done, done + inputs.length - i - 1);
    }
    return out;
  };
}
