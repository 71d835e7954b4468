/**
 * The normal distribution and the moments of a clipped normal variable, for the data-free risk
 * predictor (core/risk/risk.ts): a BatchNorm or LayerNorm output channel is N(beta, gamma^2), and
 * ReLU / Clip turn it into clip(X, lo, hi), whose mean and mean square are known in closed form.
 */

/**
 * erf(x) to about 1e-15 relative error: the Taylor series for |x| < 2.5, and the continued
 * fraction of erfc beyond (W. J. Cody's split; both converge fast in their range).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) {
    // erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1))
    let term = ax;
    let sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    const r = (2 / Math.sqrt(Math.PI)) * sum;
    return x < 0 ? -r : r;
  }
  return x < 0 ? -(1 - erfcLarge(ax)) : 1 - erfcLarge(ax);
}

/** erfc(x) for x >= 2.5: Lentz's evaluation of the continued fraction. */
function erfcLarge(x: number): number {
  // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + 2/(x + ...)))))
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 500; n++) {
    const a = n / 2;
    d = x + a * d;
    d = d === 0 ? tiny : 1 / d;
    c = x + a / c;
    if (c === 0) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** Standard normal density. */
export function normalPdf(z: number): number {
  return Number.isFinite(z) ? Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI) : 0;
}

/** Standard normal distribution function Phi(z). */
export function normalCdf(z: number): number {
  if (z === Number.POSITIVE_INFINITY) return 1;
  if (z === Number.NEGATIVE_INFINITY) return 0;
  return 0.5 * (1 + erf(z / Math.SQRT2));
}

/** Mean and mean square of a random variable. */
export interface Moments {
  mean: number;
  meanSquare: number;
}

/**
 * E[Y] and E[Y^2] of Y = clip(X, lo, hi) with X ~ N(mu, sigma^2); lo may be -Infinity and hi
 * +Infinity. With a = (lo - mu)/sigma and b = (hi - mu)/sigma:
 *   E[Y]   = lo Phi(a) + hi (1 - Phi(b)) + mu (Phi(b) - Phi(a)) + sigma (phi(a) - phi(b))
 *   E[Y^2] = lo^2 Phi(a) + hi^2 (1 - Phi(b)) + mu^2 (Phi(b) - Phi(a))
 *            + 2 mu sigma (phi(a) - phi(b)) + sigma^2 (Phi(b) - Phi(a) + a phi(a) - b phi(b))
 * (terms with an infinite bound vanish). sigma = 0 gives the clipped constant.
 */
export function clippedNormalMoments(mu: number, sigma: number, lo: number, hi: number): Moments {
  if (!(lo <= hi)) throw new RangeError(`clippedNormalMoments: empty range [${lo}, ${hi}]`);
  if (!(sigma >= 0)) throw new RangeError(`clippedNormalMoments: sigma ${sigma} < 0`);
  if (sigma === 0) {
    const y = Math.min(hi, Math.max(lo, mu));
    return { mean: y, meanSquare: y * y };
  }
  const a = (lo - mu) / sigma;
  const b = (hi - mu) / sigma;
  const pa = normalCdf(a);
  const pb = normalCdf(b);
  const da = normalPdf(a);
  const db = normalPdf(b);
  const below = Number.isFinite(lo) ? lo * pa : 0;
  const above = Number.isFinite(hi) ? hi * (1 - pb) : 0;
  const below2 = Number.isFinite(lo) ? lo * lo * pa : 0;
  const above2 = Number.isFinite(hi) ? hi * hi * (1 - pb) : 0;
  const ada = Number.isFinite(a) ? a * da : 0;
  const bdb = Number.isFinite(b) ? b * db : 0;
  const inside = pb - pa;
  return {
    mean: below + above + mu * inside + sigma * (da - db),
    meanSquare:
      below2 +
      above2 +
      mu * mu * inside +
      2 * mu * sigma * (da - db) +
      sigma * sigma * (inside + ada - bdb),
  };
}
