/**
 * Test fixtures shared by the core/onnx tests (not exported from index.ts): a tiny valid
 * model, a seeded PRNG and the list of model files to round-trip.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type ModelOptions,
  makeAttrInts,
  makeGraph,
  makeModel,
  makeNode,
  makeTensorValueInfo,
} from './builder.ts';
import type { ModelProto } from './gen/onnx_pb.ts';
import { tensorToProto } from './tensor.ts';

export { seededPrng as seededRandom } from '../random.ts';

import { seededPrng as seededRandom } from '../random.ts';

/** Root of the Debian `libonnx-testdata` package (installed by scripts/setup.sh). */
export const ONNX_TESTDATA = '/usr/share/libonnx-testdata/data';

/** Folder of the project's model zoo. */
export const ZOO_DIR = fileURLToPath(new URL('../../zoo', import.meta.url));

/** `<root>/<dir>/model.onnx` files at most `maxBytes` long, sorted. */
export function modelFiles(root: string, maxBytes = Number.POSITIVE_INFINITY): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .sort()
    .map((d) => `${root}/${d}/model.onnx`)
    .filter((f) => existsSync(f) && statSync(f).size <= maxBytes);
}

/** `n` seeded random bytes. */
export function randomBytes(seed: number, n: number): Uint8Array {
  const rand = seededRandom(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

/**
 * x[1,1,4,4] -> Conv(w[2,1,3,3], b[2], pads 1) -> Relu -> y[1,2,4,4], weights as
 * initializers, opset 17 unless overridden.
 */
export function tinyConvModel(options: ModelOptions = {}): ModelProto {
  const w = new Float32Array(18).map((_, i) => (i - 9) / 10);
  return makeModel(
    makeGraph({
      name: 'tiny',
      nodes: [
        makeNode('Conv', ['x', 'w', 'b'], ['c'], [makeAttrInts('pads', [1, 1, 1, 1])], {
          name: 'conv',
        }),
        makeNode('Relu', ['c'], ['y'], [], { name: 'relu' }),
      ],
      inputs: [makeTensorValueInfo('x', 'float32', ['batch', 1, 4, 4])],
      outputs: [makeTensorValueInfo('y', 'float32', ['batch', 2, 4, 4])],
      initializers: [
        tensorToProto('w', { type: 'float32', dims: [2, 1, 3, 3], data: w }),
        tensorToProto('b', { type: 'float32', dims: [2], data: new Float32Array([0.5, -0.5]) }),
      ],
      valueInfo: [makeTensorValueInfo('c', 'float32', ['batch', 2, 4, 4])],
    }),
    options,
  );
}
