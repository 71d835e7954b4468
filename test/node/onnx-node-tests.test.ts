/**
 * The official ONNX node tests for the integer operators (Debian libonnx-testdata): each model
 * runs through the project's generic paths (core/onnx decode, core/runtime session,
 * TensorData conversion) and must reproduce the expected outputs exactly (integer outputs) or
 * within the test suite's own float tolerance (rtol 1e-3, atol 1e-7, as onnx's backend tests).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNodeRuntime } from '../../cli/runtime-node.ts';
import { decodeModel, TensorProtoSchema, tensorFromProto } from '../../core/onnx/index.ts';
import { createSession } from '../../core/runtime/index.ts';

const ROOT = '/usr/share/libonnx-testdata/data/node';
const TESTS = [
  'test_quantizelinear',
  'test_quantizelinear_axis',
  'test_dequantizelinear',
  'test_dequantizelinear_axis',
  'test_qlinearconv',
  'test_qlinearmatmul_2D',
  'test_qlinearmatmul_3D',
  'test_basic_convinteger',
  'test_convinteger_with_padding',
  'test_convinteger_without_padding',
  'test_matmulinteger',
  'test_dynamicquantizelinear',
  'test_dynamicquantizelinear_max_adjusted',
  'test_dynamicquantizelinear_min_adjusted',
];

const readTensor = (path: string) =>
  tensorFromProto(fromBinary(TensorProtoSchema, new Uint8Array(readFileSync(path))));

beforeAll(() => {
  if (!existsSync(ROOT))
    throw new Error(`${ROOT} missing: run \`npm run setup\` (Debian libonnx-testdata)`);
  useNodeRuntime();
});

describe('official ONNX node tests for quantization operators', () => {
  it.each(TESTS)('%s', async (name) => {
    const dir = join(ROOT, name);
    const model = new Uint8Array(readFileSync(join(dir, 'model.onnx')));
    const graph = decodeModel(model).graph!;
    const session = await createSession(model);
    try {
      const sets = readdirSync(dir)
        .filter((d) => d.startsWith('test_data_set_'))
        .sort();
      expect(sets.length).toBeGreaterThan(0);
      for (const set of sets) {
        const feeds = Object.fromEntries(
          graph.input.map((inp, i) => [inp.name, readTensor(join(dir, set, `input_${i}.pb`))]),
        );
        const out = await session.run(feeds);
        for (const [i, o] of graph.output.entries()) {
          const expected = readTensor(join(dir, set, `output_${i}.pb`));
          const actual = out[o.name]!;
          expect(actual.type).toBe(expected.type);
          expect([...actual.dims]).toEqual([...expected.dims]);
          if (expected.type === 'float32') {
            const a = actual.data as Float32Array;
            const e = expected.data as Float32Array;
            for (let k = 0; k < e.length; k++)
              expect(Math.abs(a[k]! - e[k]!)).toBeLessThanOrEqual(1e-7 + 1e-3 * Math.abs(e[k]!));
          } else {
            expect(Array.from(actual.data as ArrayLike<number | bigint>)).toEqual(
              Array.from(expected.data as ArrayLike<number | bigint>),
            );
          }
        }
      }
    } finally {
      await session.release();
    }
  });
});
