/**
 * The CLI's knowledge base: core/feedback's in-memory store, loaded from and saved to one JSON
 * file after every record (the service will use D1 behind the same interface).
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type KnowledgeEntry, MemoryKnowledgeBase } from '../core/feedback/knowledge-base.ts';
import { makeOutputDir } from './output-dir.ts';

/** Default location of the CLI's knowledge base. */
export const DEFAULT_KB_PATH = '.cann-quant/knowledge-base.json';

/** A knowledge base stored as `{ "version": 1, "entries": [...] }` in a JSON file. */
export class JsonFileKnowledgeBase extends MemoryKnowledgeBase {
  private constructor(
    readonly path: string,
    entries: KnowledgeEntry[],
  ) {
    super(entries);
  }

  /** Opens the file (an absent file is an empty knowledge base). */
  static async open(path: string = DEFAULT_KB_PATH): Promise<JsonFileKnowledgeBase> {
    let entries: KnowledgeEntry[] = [];
    try {
      const doc = JSON.parse(await readFile(path, 'utf8')) as { entries?: KnowledgeEntry[] };
      entries = doc.entries ?? [];
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return new JsonFileKnowledgeBase(path, entries);
  }

  override async record(entry: KnowledgeEntry): Promise<void> {
    await super.record(entry);
    await makeOutputDir(dirname(this.path), 'knowledge base directory');
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, `${JSON.stringify({ version: 1, entries: this.list }, null, 1)}\n`);
    await rename(tmp, this.path);
  }
}
