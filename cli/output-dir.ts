/**
 * Output directories of the commands (`--out`), created like `mkdir -p` but with one readable
 * error, before any work is done (a typo in `--out` should not cost a calibration first).
 *
 * Not `mkdir(dir, { recursive: true })`: on Linux that never returns for a path under /proc
 * (Node 20: mkdir gives ENOENT there while the parent exists, and the recursive walk retries
 * forever). Here each missing ancestor is created once, top down, and any failure is final.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { CliError } from './errors.ts';

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** Creates `dir` and its missing parents; a CliError (exit 2) says why it cannot. */
export async function makeOutputDir(dir: string, what = 'output directory'): Promise<void> {
  const fail = (why: string) => new CliError(`cannot create ${what} '${dir}': ${why}`, 2);
  const missing: string[] = [];
  for (let p = resolve(dir); ; ) {
    let isDir: boolean;
    try {
      isDir = (await stat(p)).isDirectory();
    } catch (err) {
      if (code(err) === 'ENOENT') {
        missing.push(p);
        const parent = dirname(p);
        if (parent === p) break;
        p = parent;
        continue;
      }
      if (code(err) === 'ENOTDIR') throw fail('a parent of it is a file');
      throw fail((err as Error).message);
    }
    if (!isDir) throw fail(p === resolve(dir) ? 'it is a file' : `'${p}' is a file`);
    break;
  }
  for (const p of missing.reverse()) {
    try {
      await mkdir(p);
    } catch (err) {
      // created meanwhile by another process: fine if it is a directory
      if (code(err) === 'EEXIST' && (await stat(p)).isDirectory()) continue;
      // Node's message without the syscall: 'EACCES: permission denied'
      const why = (err as Error).message.replace(/, mkdir .*$/, '');
      throw fail(p === resolve(dir) ? why : `cannot create its parent '${p}': ${why}`);
    }
  }
}
