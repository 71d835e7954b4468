/** @jsxImportSource hono/jsx */
/** Task pages, the standard, and the not-found page. */
import { raw } from 'hono/html';
import type { RiskReport } from '../core/risk/risk.ts';
import type { LeaderboardRow, PublicTask } from '../db/queries.ts';
import type { TaskManifest } from '../zoo/task.ts';
import { fmtInt, fmtMetric, fmtPoints, fmtQqi } from './format.ts';
import { Level } from './leaderboard-page.tsx';

/** The task list. */
export function TasksPage({ tasks }: { tasks: PublicTask[] }) {
  return (
    <>
      <h1>Benchmark tasks</h1>
      <div class="scroll">
        <table>
          <caption>Tasks loaded in this service</caption>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Kind</th>
              <th scope="col">Metric</th>
              <th scope="col" class="num">
                FP32 reference
              </th>
              <th scope="col" class="num">
                Parameters
              </th>
            </tr>
          </thead>
          <tbody>
            {tasks.map((t) => {
              const m = t.manifest as TaskManifest;
              return (
                <tr>
                  <th scope="row">
                    <a href={`/tasks/${encodeURIComponent(t.id)}`}>{t.id}</a>
                    <div class="sub">{t.title}</div>
                  </th>
                  <td>{t.kind}</td>
                  <td>{t.metric}</td>
                  <td class="num">{fmtMetric(m.reference.fp32[t.metric] ?? Number.NaN)}</td>
                  <td class="num">{fmtInt(m.model.parameters)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {tasks.length === 0 ? <p>No task is loaded yet.</p> : ''}
    </>
  );
}

const dims = (d: (number | string)[]) => `[${d.join(', ')}]`;

/** One task: model, dataset, metric, FP32 reference, calibration rules, best results. */
export function TaskPage({
  task,
  top,
  risk,
}: {
  task: PublicTask;
  top: LeaderboardRow[];
  /** The risk predictor on every target (absent when the model blob is not stored). */
  risk?: RiskReport[] | undefined;
}) {
  const m = task.manifest as TaskManifest;
  const kv = (k: string, v: unknown) => (
    <tr>
      <th scope="row">{k}</th>
      <td>{v as string}</td>
    </tr>
  );
  return (
    <>
      <p class="muted">
        <a href="/tasks">Tasks</a> › {task.id}
      </p>
      <h1>{task.title}</h1>
      <p>
        <a href={`/?task=${encodeURIComponent(task.id)}`}>Leaderboard of this task</a> ·{' '}
        <a href={`/api/v1/tasks`}>tasks JSON</a>
      </p>
      <h2>Model</h2>
      <table class="kv">
        <tbody>
          {kv('Parameters', fmtInt(m.model.parameters))}
          {kv('Opset', String(m.model.opset))}
          {kv(
            'Inputs',
            m.model.inputs.map((i) => `${i.name} ${i.type} ${dims(i.dims)}`).join('; '),
          )}
          {kv(
            'Outputs',
            m.model.outputs.map((i) => `${i.name} ${i.type} ${dims(i.dims)}`).join('; '),
          )}
          {kv('SHA-256', <code>{m.model.sha256}</code>)}
          {kv('Preprocessing', m.preprocessing)}
        </tbody>
      </table>
      <h2>Dataset</h2>
      <table class="kv">
        <tbody>
          {kv('Name', m.dataset.name)}
          {kv('Source', m.dataset.source)}
          {kv('Licence', m.dataset.licence)}
        </tbody>
      </table>
      <h2>Metric and FP32 reference</h2>
      <table class="kv">
        <tbody>
          {kv('Primary metric', m.metric.primary)}
          {kv('Definition', m.metric.definition)}
          {Object.entries(m.reference.fp32).map(([k, v]) => kv(`FP32 ${k}`, fmtMetric(v)))}
          {kv('Reference samples', fmtInt(m.reference.samples))}
          {kv('Recorded by', m.reference.recordedBy)}
        </tbody>
      </table>
      <h2>Calibration rules</h2>
      <ul>
        <li>
          Recipes calibrate on the calibration split only: {m.splits.calibration.source} (
          {fmtInt(m.splits.calibration.size)} samples; {m.splits.calibration.description}).
        </li>
        <li>
          The service evaluates on the evaluation split, never shown to recipes:{' '}
          {m.splits.evaluation.source} ({fmtInt(m.splits.evaluation.size)} samples;{' '}
          {m.splits.evaluation.description}). Its labels are never returned by any endpoint.
        </li>
        <li>
          L2.samples passes with at most 100 calibration samples, all from the calibration split.
          See the{' '}
          <a href="/standard#6-fairness-rules-from-mlperfs-closed-division">fairness rules</a>.
        </li>
      </ul>
      <h2>Best results</h2>
      {top.length ? (
        <div class="scroll">
          <table>
            <caption>Top {top.length} by QQI, all targets</caption>
            <thead>
              <tr>
                <th scope="col" class="num">
                  Rank
                </th>
                <th scope="col">Recipe</th>
                <th scope="col">Target</th>
                <th scope="col">Level</th>
                <th scope="col" class="num">
                  QQI
                </th>
                <th scope="col" class="num">
                  Loss (points)
                </th>
              </tr>
            </thead>
            <tbody>
              {top.map((r) => (
                <tr>
                  <td class="num">{r.rank}</td>
                  <td>
                    <a href={`/submissions/${encodeURIComponent(r.submissionId)}`}>{r.recipe}</a>
                  </td>
                  <td>{r.target}</td>
                  <td>
                    <Level level={r.level} />
                  </td>
                  <td class="num">{fmtQqi(r.qqi)}</td>
                  <td class="num">{fmtPoints(r.lossPoints)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p>No scored result for this task yet.</p>
      )}
      {risk ? <RiskTable id={task.id} reports={risk} /> : ''}
    </>
  );
}

const dB = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : 'inf');

/** The data-free risk predictor's summary per target (docs/RISK.md). */
function RiskTable({ id, reports }: { id: string; reports: RiskReport[] }) {
  return (
    <>
      <h2>INT8 risk by target, from the model alone</h2>
      <p>
        Predicted from the model's own parameters, before any data (BatchNorm, LayerNorm and
        embedding statistics give each layer's input; weights are rounded exactly): each layer's
        INT8 noise carried to the model output. On the zoo it compares formats within 3 dB on the
        CNNs and matches the measured output within 3 dB where a global average pool ends the model;
        elsewhere it is pessimistic (spam-transformer measured 23-31 dB better).{' '}
        <a href={`/api/v1/tasks/${encodeURIComponent(id)}/risk?target=all`}>JSON</a>
      </p>
      <div class="scroll">
        <table>
          <caption>Predicted SQNR per target (higher is better)</caption>
          <thead>
            <tr>
              <th scope="col">Target</th>
              <th scope="col" class="num">
                Predicted dB
              </th>
              <th scope="col" class="num">
                Weights alone dB
              </th>
              <th scope="col" class="num">
                Layers with a predicted input
              </th>
              <th scope="col">Risk</th>
              <th scope="col">Noisiest layer</th>
            </tr>
          </thead>
          <tbody>
            {reports.map((r) => (
              <tr data-target={r.target}>
                <td>{r.target}</td>
                <td class="num">{dB(r.predictedSqnrDb)}</td>
                <td class="num">{dB(r.weightOnlySqnrDb)}</td>
                <td class="num">
                  {r.covered} / {r.layers.length}
                </td>
                <td>{r.level}</td>
                <td>
                  <code>{r.layers[0]?.name ?? '-'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** docs/STANDARD.md rendered (trusted text from the repository). */
export function StandardPage({ html }: { html: string }) {
  return <article class="prose">{raw(html)}</article>;
}

/** 404 page body. */
export function NotFoundPage({ what }: { what: string }) {
  return (
    <>
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        Back to the <a href="/">leaderboard</a>.
      </p>
    </>
  );
}
