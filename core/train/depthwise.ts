/**
 * The gradients of a depthwise convolution (NHWC, channel multiplier 1), which
 * tfjs-backend-wasm does not implement: registered on the wasm backend by backend.ts.
 *
 * Forward: y[n, oh, ow, c] = sum over (kh, kw) of x[n, ih, iw, c] * w[kh, kw, c]
 * with ih = oh * strideH + kh * dilationH - padTop, iw likewise, out-of-range taps zero.
 * Both gradients walk the same (n, oh, ow, kh, kw) taps with the channel loop innermost, so
 * every inner loop reads and writes contiguous memory; float32 accumulation as tfjs-cpu does.
 * depthwise.test.ts checks both against tfjs-backend-cpu's kernels.
 */

/** The geometry of one depthwise convolution (tfjs's Conv2DInfo, the fields used here). */
export interface DepthwiseGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  filterHeight: number;
  filterWidth: number;
  padInfo: { top: number; left: number };
}

/** Visits every in-range tap: (x offset, y offset, w offset), each the start of C channels. */
function forEachTap(g: DepthwiseGeometry, visit: (xo: number, yo: number, wo: number) => void) {
  const C = g.inChannels;
  for (let n = 0; n < g.batchSize; n++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      for (let ow = 0; ow < g.outWidth; ow++) {
        const yo = ((n * g.outHeight + oh) * g.outWidth + ow) * C;
        for (let kh = 0; kh < g.filterHeight; kh++) {
          const ih = oh * g.strideHeight + kh * g.dilationHeight - g.padInfo.top;
          if (ih < 0 || ih >= g.inHeight) continue;
          for (let kw = 0; kw < g.filterWidth; kw++) {
            const iw = ow * g.strideWidth + kw * g.dilationWidth - g.padInfo.left;
            if (iw < 0 || iw >= g.inWidth) continue;
            visit(((n * g.inHeight + ih) * g.inWidth + iw) * C, yo, (kh * g.filterWidth + kw) * C);
          }
        }
      }
    }
  }
}

/** dL/dx of a depthwise convolution from dL/dy and the filter [kh, kw, C, 1]. */
export function depthwiseBackpropInput(
  g: DepthwiseGeometry,
  dy: Float32Array,
  filter: Float32Array,
): Float32Array {
  const C = g.inChannels;
  const dx = new Float32Array(g.batchSize * g.inHeight * g.inWidth * C);
  forEachTap(g, (xo, yo, wo) => {
    for (let c = 0; c < C; c++) dx[xo + c]! += dy[yo + c]! * filter[wo + c]!;
  });
  return dx;
}

/** dL/dw [kh, kw, C, 1] of a depthwise convolution from its input x and dL/dy. */
export function depthwiseBackpropFilter(
  g: DepthwiseGeometry,
  x: Float32Array,
  dy: Float32Array,
): Float32Array {
  const C = g.inChannels;
  const dw = new Float32Array(g.filterHeight * g.filterWidth * C);
  forEachTap(g, (xo, yo, wo) => {
    for (let c = 0; c < C; c++) dw[wo + c]! += x[xo + c]! * dy[yo + c]!;
  });
  return dw;
}
