import { describe, expect, it } from 'vitest';
import { seededPrng } from '../random.ts';
import { type TensorData, tensor } from '../tensor/index.ts';
import {
  defaultStresses,
  extraLossErrors,
  JACKKNIFE_GROUPS,
  perturb,
  stress,
  stressedSource,
  stressReport,
  valueRange,
} from './stress.ts';

const images = (n: number, per: number, f: (i: number, j: number) => number) =>
  tensor(
    'float32',
    [n, per],
    Float32Array.from({ length: n * per }, (_, k) => f(Math.floor(k / per), k % per)),
  );
const tokens = (rows: number[][]) =>
  tensor(
    'int64',
    [rows.length, rows[0]!.length],
    BigInt64Array.from(rows.flat(), (v) => BigInt(v)),
  );
/** A BatchSource over a [n, per] float32 tensor, sliced per batch as a task's split is. */
const sourceOf = (split: TensorData) => {
  const [n, per] = split.dims as [number, number];
  return {
    size: n,
    batch: (start: number, end: number) => ({
      x: tensor(
        'float32',
        [end - start, per],
        (split.data as Float32Array).slice(start * per, end * per),
      ),
    }),
  };
};
const ids = (t: TensorData) => Array.from(t.data as BigInt64Array, Number);

describe('stress perturbations', () => {
  it('contrast scales each sample around its own mean; brightness shifts it by level x its std', () => {
    // sample 0: [1, 2, 3] (mean 2, std sqrt(2/3)); sample 1: [10, 10, 10] (std 0)
    const x = tensor('float32', [2, 3], Float32Array.of(1, 2, 3, 10, 10, 10));
    expect(Array.from(perturb(x, stress('contrast', 1.5), 0, 0).data as Float32Array)).toEqual([
      0.5, 2, 3.5, 10, 10, 10,
    ]);
    const b = Array.from(perturb(x, stress('brightness', 0.5), 0, 0).data as Float32Array);
    const shift = 0.5 * Math.sqrt(2 / 3);
    expect(b.slice(0, 3).map((v, j) => v - [1, 2, 3][j]!)).toEqual(
      [shift, shift, shift].map((s) => expect.closeTo(s, 6)),
    );
    expect(b.slice(3)).toEqual([10, 10, 10]);
  });

  it("clamps perturbed values to the clean split's range, found over every batch", async () => {
    const split = tensor('float32', [3, 3], Float32Array.of(-1, 0, 1, -1, 2, 0, 0, 0.5, 1));
    const source = sourceOf(split);
    expect(await valueRange(source, 2)).toEqual({ x: [-1, 2] });
    // sample 0 [-1, 0, 1] at contrast x3: [-3, 0, 3] clamped to [-1, 2]
    const y = perturb(split, stress('contrast', 3), 0, 0, [-1, 2]).data as Float32Array;
    expect(Array.from(y.subarray(0, 3))).toEqual([-1, 0, 2]);
    const noisy = (await stressedSource(source, stress('noise', 5), 1, { x: [-1, 2] }).batch(0, 3))
      .x!.data as Float32Array;
    expect(Math.min(...noisy)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...noisy)).toBeLessThanOrEqual(2);
    expect(new Set(noisy).size).toBeGreaterThan(2); // clamped, not flattened
  });

  it('noise has the asked standard deviation relative to the sample, and zero mean', () => {
    const per = 20_000;
    const x = images(1, per, (_, j) => 3 * Math.sin(j)); // std 3/sqrt(2)
    const y = perturb(x, stress('noise', 0.3), 7, 0).data as Float32Array;
    let m = 0;
    let s = 0;
    for (let j = 0; j < per; j++) m += y[j]! - x.data[j]!;
    m /= per;
    for (let j = 0; j < per; j++) s += (y[j]! - x.data[j]! - m) ** 2;
    const sigma = Math.sqrt(s / per);
    const want = 0.3 * (3 / Math.SQRT2);
    expect(Math.abs(sigma / want - 1)).toBeLessThan(0.03);
    expect(Math.abs(m)).toBeLessThan(0.03 * want);
  });

  it('perturbs a sample the same way whatever the batches, and differently by seed', async () => {
    const split = images(6, 8, (i, j) => i + j / 8);
    const source = sourceOf(split);
    const noisy = stressedSource(source, stress('noise', 0.1), 3);
    const whole = Array.from((await noisy.batch(0, 6)).x!.data as Float32Array);
    const parts = [
      ...((await noisy.batch(0, 2)).x!.data as Float32Array),
      ...((await noisy.batch(2, 5)).x!.data as Float32Array),
      ...((await noisy.batch(5, 6)).x!.data as Float32Array),
    ];
    expect(parts).toEqual(whole);
    const other = Array.from(
      (await stressedSource(source, stress('noise', 0.1), 4).batch(0, 6)).x!.data as Float32Array,
    );
    expect(other).not.toEqual(whole);
    // the clean split is left as it was
    expect(Array.from(source.batch(0, 6).x.data as Float32Array)).toEqual(Array.from(split.data));
  });

  it('token swaps keep the class token, the padding and the multiset of tokens', () => {
    const row = [1, 5, 6, 7, 8, 9, 0, 0];
    expect(ids(perturb(tokens([row]), stress('token-swap', 1), 0, 0))).toEqual([
      1, 6, 5, 8, 7, 9, 0, 0,
    ]);
    expect(ids(perturb(tokens([row]), stress('token-swap', 0), 0, 0))).toEqual(row);
    const long = [1, ...Array.from({ length: 100 }, (_, j) => 2 + j), 0, 0];
    const swapped = ids(perturb(tokens([long]), stress('token-swap', 0.3), 11, 0));
    expect(swapped[0]).toBe(1);
    expect(swapped.slice(-2)).toEqual([0, 0]);
    expect([...swapped].sort((a, b) => a - b)).toEqual([...long].sort((a, b) => a - b));
    const moved = swapped.filter((v, j) => v !== long[j]).length;
    // each of ~100 positions starts a swap with probability 0.3 (a swap moves two tokens)
    expect(moved).toBeGreaterThan(20);
    expect(moved).toBeLessThan(70);
  });

  it('token drops move the kept tokens up in order and pad the end', () => {
    const row = [1, 5, 6, 7, 8, 9, 0, 0];
    expect(ids(perturb(tokens([row]), stress('token-drop', 1), 0, 0))).toEqual([
      1, 0, 0, 0, 0, 0, 0, 0,
    ]);
    expect(ids(perturb(tokens([row]), stress('token-drop', 0), 0, 0))).toEqual(row);
    const long = [1, ...Array.from({ length: 1000 }, (_, j) => 2 + j)];
    const dropped = ids(perturb(tokens([long]), stress('token-drop', 0.3), 5, 0));
    const kept = dropped.slice(1).filter((v) => v !== 0);
    expect(kept).toEqual([...kept].sort((a, b) => a - b)); // order kept
    expect(dropped.slice(1 + kept.length).every((v) => v === 0)).toBe(true);
    expect(kept.length).toBeGreaterThan(650);
    expect(kept.length).toBeLessThan(750);
  });

  it('chooses perturbations by input type and refuses bad levels and mixed inputs', () => {
    expect(defaultStresses({ x: images(1, 2, () => 0) }).map((s) => s.id)).toEqual([
      'noise-0.1',
      'noise-0.3',
      'contrast-1.5',
      'brightness-0.5',
    ]);
    expect(defaultStresses({ ids: tokens([[1, 2]]) }).map((s) => s.id)).toEqual([
      'token-swap-0.1',
      'token-drop-0.1',
      'token-drop-0.3',
    ]);
    expect(() => defaultStresses({ x: images(1, 2, () => 0), ids: tokens([[1, 2]]) })).toThrow(
      /no perturbations for inputs of types float32, int64/,
    );
    expect(() => stress('noise', -1)).toThrow(/>= 0/);
    expect(() => stress('token-drop', 2)).toThrow(/probability/);
    expect(() => perturb(tokens([[1, 2]]), stress('noise', 0.1), 0, 0)).toThrow(/float32/);
  });

  it('reports each stress as extra loss over the clean loss, flagged above the threshold', () => {
    const r = stressReport(
      'top1',
      { fp32: 0.885, int8: 0.884 },
      [
        { stress: stress('noise', 0.1), fp32: 0.87, int8: 0.868 },
        { stress: stress('contrast', 1.5), fp32: 0.86, int8: 0.84 },
      ],
      0.5,
    );
    expect(r.clean.loss_points).toBe(0.1);
    expect(r.rows.map((x) => [x.id, x.loss_points, x.extra_loss_points, x.pass])).toEqual([
      ['noise-0.1', 0.2, 0.1, true],
      ['contrast-1.5', 2, 1.9, false],
    ]);
    expect(r.pass).toBe(false);
  });

  it("gives each extra loss's jackknife standard error; for top-1 it has a closed form", () => {
    // 200 samples, 3 classes; top-1 = mean of per-sample correctness, so with equal groups the
    // delete-a-group jackknife is se^2 = (G - 1) / G * sum_g (S_g - S / G)^2 / (n - n / G)^2,
    // S_g the group's sum of per-sample differences d_i (stressed loss minus clean loss).
    const rand = seededPrng(11);
    const n = 200;
    const labels = Uint8Array.from({ length: n }, () => Math.floor(rand() * 3));
    const noisy = (p: number) =>
      Array.from(labels, (y) => (rand() < p ? (y + 1 + Math.floor(rand() * 2)) % 3 : y));
    const clean = { fp32: noisy(0.1), int8: noisy(0.12) };
    const stressed = [
      { fp32: noisy(0.2), int8: noisy(0.3) },
      { fp32: noisy(0.15), int8: noisy(0.15) },
    ];
    const top1 = (p: number[], l: Uint8Array) => p.filter((c, i) => c === l[i]).length / p.length;
    const se = extraLossErrors(top1, labels, clean, stressed);
    const G = JACKKNIFE_GROUPS;
    const ok = (p: number[], i: number) => (p[i] === labels[i] ? 1 : 0);
    stressed.forEach((s, k) => {
      const d = Array.from(
        { length: n },
        (_, i) => ok(s.fp32, i) - ok(s.int8, i) - (ok(clean.fp32, i) - ok(clean.int8, i)),
      );
      const S = d.reduce((a, b) => a + b, 0);
      const Sg = Array.from({ length: G }, (_, g) =>
        d.filter((_, i) => i % G === g).reduce((a, b) => a + b, 0),
      );
      const want =
        100 *
        Math.sqrt(
          (((G - 1) / G) * Sg.reduce((a, sg) => a + (sg - S / G) ** 2, 0)) / (n - n / G) ** 2,
        );
      expect(se[k]!).toBeCloseTo(want, 10);
    });
    // plain arrays of labels work the same; mismatched sets are refused
    expect(
      extraLossErrors(
        (p: number[], l: number[]) => top1(p, Uint8Array.from(l)),
        [...labels],
        clean,
        stressed,
      ),
    ).toEqual(se);
    expect(() =>
      extraLossErrors(top1, labels, clean, [{ fp32: stressed[0]!.fp32, int8: [] }]),
    ).toThrow(/same samples/);
    // the report marks a flagged row whose interval holds 0 as not significant
    const r = stressReport(
      'top1',
      { fp32: 0.9, int8: 0.9 },
      [
        { stress: stress('noise', 0.1), fp32: 0.9, int8: 0.89 },
        { stress: stress('noise', 0.3), fp32: 0.9, int8: 0.8 },
      ],
      0.5,
      [0.8, 2],
    );
    expect(r.rows.map((x) => [x.pass, x.extra_se_points, x.significant])).toEqual([
      [false, 0.8, false],
      [false, 2, true],
    ]);
  });
});
