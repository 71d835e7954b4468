/** @jsxImportSource hono/jsx */
/**
 * The community challenges (product.md: "challenges for 4-bit, dynamic and cross-framework
 * quantization"): what each asks, how to enter, and its standings, read from the same
 * leaderboard query as the main page (db/queries.ts).
 */
import { isDynamic, TARGETS } from '../core/formats/targets.ts';
import type { LeaderboardRow } from '../db/queries.ts';
import { fmtMetric, fmtPoints, fmtQqi } from './format.ts';
import { Level } from './leaderboard-page.tsx';

/** A challenge and what the page shows of it. */
export interface Challenge {
  id: 'w4a8' | 'cross-framework' | 'dynamic';
  title: string;
  /** What it asks, one paragraph. */
  asks: string;
  /** How to enter (commands), or why it is not open. */
  enter: string[];
  /** The leaderboard query that lists its entries (absent: not open). */
  board?: { source?: 'imported'; targets?: readonly string[]; href: string };
}

/** The W4A8 targets: the variants of an INT8 target with int4 weights (core/formats). */
export const W4A8_TARGETS = Object.values(TARGETS)
  .filter((t) => t.base !== undefined)
  .map((t) => t.id);

/** The dynamic-quantization targets (activation scales computed at run time, core/formats). */
export const DYNAMIC_TARGETS = Object.values(TARGETS)
  .filter((t) => isDynamic(t))
  .map((t) => t.id);

/** The three challenges, in product.md's order. */
export const CHALLENGES: readonly Challenge[] = [
  {
    id: 'w4a8',
    title: '4-bit weights (W4A8)',
    asks: 'Int4 symmetric per-channel weights with int8 activations on Ascend 310 and 310P: a quarter of the weight memory, and the loss is hard to keep under a point. Any recipe (calibration, the method search, IFMR weight clipping, GPTQ weight rounding (the default of the templates there), progressive QAT) on a W4A8 target enters; entries rank by QQI.',
    enter: [
      'cann-quant score --task fmnist-resnet --target ascend310-w4a8',
      'cann-quant train --task fmnist-resnet --target ascend310-w4a8 --progressive --hardware-sim --distill 2',
      'cann-quant submit recipe.json   # "target": "ascend310-w4a8"',
    ],
    board: { targets: W4A8_TARGETS, href: `/api/v1/leaderboard?targets=${W4A8_TARGETS.join(',')}` },
  },
  {
    id: 'cross-framework',
    title: 'Cross-framework quantization',
    asks: "A model quantized by another framework (PyTorch, ONNX Runtime, TensorRT's toolkit), exported as QDQ ONNX, scored with its own scales on the chip's INT8 arithmetic: no calibration here, only the framework's parameters in the target's format (exact where the chip's grid holds them, re-fitted and reported where not). It must be the task's model, each weight within half a quantization step.",
    enter: [
      'cann-quant import --model model.qdq.onnx --task fmnist-resnet --all-targets',
      'cann-quant score --task fmnist-resnet --qdq model.qdq.onnx',
      'cann-quant submit recipe.json --qdq model.qdq.onnx',
    ],
    board: { source: 'imported', href: '/api/v1/leaderboard?source=imported' },
  },
  {
    id: 'dynamic',
    title: 'Dynamic quantization',
    asks: "Activation scales computed from each input at run time instead of calibrated, as ONNX Runtime's quantize_dynamic does: target cpu-wasm-dynamic runs DynamicQuantizeLinear, MatMulInteger / ConvInteger and fp32 dequantization on onnxruntime-web's own kernels, each sample quantized on its own. Calibration samples still drive sensitivity, bias correction and the loss estimate. The chips modelled here (AMCT, TensorRT INT8, SNPE) take calibrated scales only, so the challenge runs on the CPU target; the service times nothing, so entries without a measured speed-up rank by loss.",
    enter: [
      'cann-quant score --task spam-transformer --target cpu-wasm-dynamic',
      'cann-quant submit recipe.json   # "target": "cpu-wasm-dynamic"',
    ],
    board: {
      targets: DYNAMIC_TARGETS,
      href: `/api/v1/leaderboard?targets=${DYNAMIC_TARGETS.join(',')}`,
    },
  },
];

function Standings({ rows }: { rows: LeaderboardRow[] }) {
  if (rows.length === 0) return <p>No entry has been scored yet.</p>;
  return (
    <div class="scroll">
      <table>
        <thead>
          <tr>
            <th scope="col" class="num">
              #
            </th>
            <th scope="col">Recipe</th>
            <th scope="col">Task</th>
            <th scope="col">Target</th>
            <th scope="col">Level</th>
            <th scope="col" class="num">
              QQI
            </th>
            <th scope="col" class="num">
              INT8
            </th>
            <th scope="col" class="num">
              Loss (points)
            </th>
            <th scope="col">Submitter</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr data-submission={r.submissionId}>
              <td class="num">{i + 1}</td>
              <th scope="row">
                <a href={`/submissions/${encodeURIComponent(r.submissionId)}`}>{r.recipe}</a>
                {r.importedFrom ? <div class="sub">imported · {r.importedFrom}</div> : ''}
              </th>
              <td>
                <a href={`/tasks/${encodeURIComponent(r.task)}`}>{r.task}</a>
              </td>
              <td>{r.target}</td>
              <td>
                <Level level={r.level} />
              </td>
              <td class="num">{fmtQqi(r.qqi)}</td>
              <td class="num">{fmtMetric(r.int8)}</td>
              <td class="num">{fmtPoints(r.lossPoints)}</td>
              <td>{r.submitter}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The challenges with their standings (rows keyed by challenge id; absent: not open). */
export function ChallengesPage({ standings }: { standings: Record<string, LeaderboardRow[]> }) {
  return (
    <>
      <h1>Challenges</h1>
      <p>
        Community challenges of the quantization maturity standard. Each is scored by the same
        pipeline, QQI and checks as the main leaderboard; these tables are its entries, best QQI
        first (entries without a QQI after them, least loss first).
      </p>
      {CHALLENGES.map((c) => (
        <section id={c.id} aria-labelledby={`h-${c.id}`}>
          <h2 id={`h-${c.id}`}>{c.title}</h2>
          <p>{c.asks}</p>
          {c.enter.length > 0 ? (
            <pre>
              <code>{c.enter.join('\n')}</code>
            </pre>
          ) : (
            ''
          )}
          {c.board ? (
            <>
              <Standings rows={standings[c.id] ?? []} />
              <p>
                <a href={c.board.href}>JSON</a> · <a href={`${c.board.href}&format=csv`}>CSV</a>
              </p>
            </>
          ) : (
            <p class="note">Not open.</p>
          )}
        </section>
      ))}
    </>
  );
}
