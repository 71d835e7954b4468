/**
 * The /health probe: proves that onnxruntime-web really runs in this isolate by creating a
 * session on a 91-byte embedded model (y = x + [1, 2, 3], one Add node, opset 13) and checking
 * its output exactly.
 */

import { createSession, getRuntimeInfo } from '../core/runtime/index.ts';
import { tensor } from '../core/tensor/index.ts';

/** ONNX bytes of `y = x + [1, 2, 3]` (x, y: float32[3]). */
export const HEALTH_MODEL = new Uint8Array([
  8, 7, 58, 81, 10, 14, 10, 1, 120, 10, 1, 98, 18, 1, 121, 34, 3, 65, 100, 100, 18, 6, 104, 101, 97,
  108, 116, 104, 42, 21, 8, 3, 16, 1, 66, 1, 98, 74, 12, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64,
  90, 15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 3, 98, 15, 10, 1, 121, 18, 10, 10, 8, 8,
  1, 18, 4, 10, 2, 8, 3, 66, 4, 10, 0, 16, 13,
]);

export interface OrtHealth {
  ok: boolean;
  loader?: string;
  ortVersion?: string;
  /** Milliseconds for session create + run (0 on deployed Workers, whose clocks stand still during CPU work). */
  ms?: number;
  error?: string;
}

/** Creates and runs the embedded model; never throws. */
export async function checkOrt(): Promise<OrtHealth> {
  const t0 = Date.now();
  try {
    const info = await getRuntimeInfo();
    const session = await createSession(HEALTH_MODEL);
    try {
      const out = await session.run({ x: tensor('float32', [3], new Float32Array([0.5, -2, 4])) });
      const y = out.y?.data;
      const ok =
        y instanceof Float32Array && y.length === 3 && y[0] === 1.5 && y[1] === 0 && y[2] === 7;
      return {
        ok,
        loader: info.loader,
        ortVersion: info.ortVersion,
        ms: Date.now() - t0,
        ...(ok ? {} : { error: `unexpected output ${String(y)}` }),
      };
    } finally {
      await session.release();
    }
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}
