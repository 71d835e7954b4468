import { readFileSync } from 'node:fs';
import { decodeModel } from '../core/onnx/index.ts';
const m = decodeModel(readFileSync(process.argv[2]!));
const g = m.graph!;
const counts = new Map<string, number>();
for (const n of g.node) {
  const key = n.opType + (n.opType === 'Cast' ? ':' + (n.attribute.find((a) => a.name === 'to')?.i ?? '') : '');
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
console.log([...counts].sort((a, b) => b[1] - a[1]));
// print sequence of node ops (names) for a stretch
const limit = Number(process.argv[3] ?? 80);
for (const n of g.node.slice(0, limit)) console.log(n.opType, n.name, n.input.join(','), '->', n.output.join(','));
