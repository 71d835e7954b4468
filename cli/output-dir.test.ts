/** makeOutputDir: mkdir -p with one readable error, and no hang under /proc. */
import { mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliError } from './errors.ts';
import { makeOutputDir } from './output-dir.ts';

describe('makeOutputDir', async () => {
  const root = await mkdtemp(join(tmpdir(), 'cq-outdir-'));

  it('creates missing parents, and accepts an existing directory', async () => {
    const dir = join(root, 'a', 'b', 'c');
    await makeOutputDir(dir);
    expect((await stat(dir)).isDirectory()).toBe(true);
    await makeOutputDir(dir);
    await makeOutputDir(root);
  });

  it('says when the path or one of its parents is a file', async () => {
    const file = join(root, 'file');
    await writeFile(file, 'x');
    await expect(makeOutputDir(file)).rejects.toThrow(
      new CliError(`cannot create output directory '${file}': it is a file`, 2),
    );
    await expect(makeOutputDir(join(file, 'sub', 'x'))).rejects.toThrow(
      /: a parent of it is a file$/,
    );
  });

  it.runIf(process.platform === 'linux')(
    'fails at once under /proc, where recursive mkdir never returns',
    async () => {
      const err = await makeOutputDir('/proc/cann-quant-nope/x').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CliError);
      expect((err as CliError).exitCode).toBe(2);
      expect((err as Error).message).toBe(
        "cannot create output directory '/proc/cann-quant-nope/x': cannot create its parent '/proc/cann-quant-nope': ENOENT: no such file or directory",
      );
    },
  );
});
