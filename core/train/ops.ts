/**
 * TensorFlow.js building blocks of the training forward pass: a convolution whose gradient is
 * expressed with fast forward convolutions, straight-through estimators, and fp16 rounding.
 * Every gradient here is computed by TensorFlow.js's autodiff; `tf.customGrad` only states which
 * library ops compute a gradient (conv) or that a rounding passes gradients straight through.
 */
import { tf } from './backend.ts';

type T4 = tf.Tensor4D;

type GradFn<T extends tf.Tensor> = (
  inputs: tf.Tensor[],
  save: tf.GradSaveFunc,
) => { value: T; gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] };

/** `tf.customGrad` over `arity` tensor inputs (typed helper). */
function custom<T extends tf.Tensor>(arity: number, f: GradFn<T>) {
  return tf.customGrad<T>((...args) =>
    f(args.slice(0, arity) as tf.Tensor[], args[arity] as tf.GradSaveFunc),
  );
}

/**
 * Valid (unpadded) 2-D convolution, NHWC input [N, Hp, Wp, C] and HWIO filter [kh, kw, C, O],
 * strides (sh, sw), no dilation. Forward: `tf.conv2d`. Gradients, both as stride-1 forward
 * convolutions (the wasm backend's fast XNNPACK path; its Conv2DBackpropInput is ~20x slower and
 * it has no Conv2DBackpropFilter):
 * - dx = conv(zero-inserted dy padded by k-1, filter rotated 180 degrees with C and O swapped);
 * - dW = conv(x with N and C swapped, dy as the filter, dilation = stride), first kh x kw taps.
 * The test compares both with TensorFlow.js's own conv2d gradient on the cpu backend.
 */
export function conv2dValid(
  x: T4,
  w: T4,
  strides: [number, number],
  dilations: [number, number] = [1, 1],
): T4 {
  const [sh, sw] = strides;
  const [dh, dw] = dilations;
  if ((dh > 1 || dw > 1) && (sh > 1 || sw > 1))
    throw new RangeError(
      `conv2dValid: strides ${strides} with dilations ${dilations} (one of them must be 1)`,
    );
  const f = custom<T4>(2, ([xIn, wIn], save) => {
    const xv = xIn as T4;
    const wv = wIn as T4;
    save([xv, wv]);
    return {
      value: tf.conv2d(xv, wv, [sh, sw], 'valid', 'NHWC', [dh, dw]),
      gradFunc: (dyIn, saved) => {
        const [xs, ws] = saved as [T4, T4];
        const dy = dyIn as T4;
        const [n, hp, wp, c] = xs.shape;
        const [kh0, kw0, , o] = ws.shape;
        // the dilated filter's extent (stride is 1 whenever a dilation is > 1)
        const kh = (kh0 - 1) * dh + 1;
        const kw = (kw0 - 1) * dw + 1;
        const [, ho, wo] = dy.shape;
        // dx
        let dyu = dy as tf.Tensor4D;
        if (sh > 1 || sw > 1) {
          const six = tf.reshape(dy, [n, ho, 1, wo, 1, o]);
          const padded = tf.pad(six, [
            [0, 0],
            [0, 0],
            [0, sh - 1],
            [0, 0],
            [0, sw - 1],
            [0, 0],
          ]);
          dyu = tf.slice(
            tf.reshape(padded, [n, ho * sh, wo * sw, o]) as T4,
            [0, 0, 0, 0],
            [n, (ho - 1) * sh + 1, (wo - 1) * sw + 1, o],
          ) as T4;
        }
        const extraH = hp - ((ho - 1) * sh + kh);
        const extraW = wp - ((wo - 1) * sw + kw);
        const dyp = tf.pad(dyu, [
          [0, 0],
          [kh - 1, kh - 1 + extraH],
          [kw - 1, kw - 1 + extraW],
          [0, 0],
        ]);
        const wf = tf.transpose(tf.reverse(ws, [0, 1]), [0, 1, 3, 2]) as T4;
        const dx = tf.conv2d(dyp, wf, 1, 'valid', 'NHWC', [dh, dw]);
        // dW
        const xt = tf.transpose(xs, [3, 1, 2, 0]) as T4; // [C, Hp, Wp, N]
        const dyt = tf.transpose(dy, [1, 2, 0, 3]) as T4; // [Ho, Wo, N, O]
        // dW[i, j] = sum x[oh * s + i * d] dy[oh]: dy as a filter dilated by the stride, taps
        // every d-th position of x (tf.conv2d takes one of strides/dilations > 1, as here)
        const g =
          dh > 1 || dw > 1
            ? tf.conv2d(xt, dyt, [dh, dw], 'valid') // [C, >=kh0, >=kw0, O]
            : tf.conv2d(xt, dyt, 1, 'valid', 'NHWC', [sh, sw]);
        const gw = tf.transpose(tf.slice(g, [0, 0, 0, 0], [c, kh0, kw0, o]), [1, 2, 0, 3]);
        return [dx, gw];
      },
    };
  });
  return f(x, w);
}

/** Round half to even with a straight-through gradient (d round(x)/dx := 1). */
export const steRound = custom(1, ([x]) => ({
  value: tf.round(x!),
  gradFunc: (dy) => dy,
}));

/** The value of x with no gradient flowing back into x (scales derived from weights). */
export const noGrad = custom(1, ([x]) => ({
  value: tf.clone(x!),
  gradFunc: (dy) => tf.zerosLike(dy),
}));

const FP16_MIN_NORMAL = 2 ** -14;
const FP16_MAX = 65504;

/**
 * Rounds float32 values to the nearest fp16 value, saturating at +-65504 (the emulator's
 * saturation mode). Normal range: Veltkamp split with factor 2^13 + 1, which rounds a float32
 * to 24 - 13 = 11 significant bits, i.e. the fp16 grid; subnormal range (|x| < 2^-14): rounding
 * to a multiple of 2^-24 (tf.round is half to even). Straight-through gradient.
 */
export const fp16Round = custom(1, ([xIn]) => {
  const x = xIn!;
  return {
    value: tf.tidy(() => {
      const c = tf.mul(x, 8193);
      const hi = tf.sub(c, tf.sub(c, x));
      const sub = tf.div(tf.round(tf.mul(x, 2 ** 24)), 2 ** 24);
      const r = tf.where(tf.less(tf.abs(x), FP16_MIN_NORMAL), sub, hi);
      return tf.clipByValue(r, -FP16_MAX, FP16_MAX);
    }),
    gradFunc: (dy) => dy,
  };
});
