import { EMAIL_TOKENIZER, tokenizeEmail } from '../datasets/email-tokenizer.ts';
import type { DataSource } from '../datasets/source.ts';
import type { SplitName } from '../task.ts';

/**
 * The temporal SpamAssassin split of the `spam-transformer` task (twin of
 * zoo/common/spam_assassin.py). Train on the older folders, evaluate on the newer ones plus the
 * hard ham. Calibration is every 10th message (sorted file-name index % 10 === 0) of the older
 * folders, never trained on.
 */
export const SPAM_SPLITS = {
  /** Training folders; the held-out tenth is the calibration split. */
  older: [
    { folder: 'easy-ham-1', label: 0 },
    { folder: 'spam-1', label: 1 },
  ],
  evaluation: [
    { folder: 'easy-ham-2', label: 0 },
    { folder: 'hard-ham-1', label: 0 },
    { folder: 'spam-2', label: 1 },
  ],
  calibrationEvery: 10,
} as const;

/** One email of a split: its logical file name and label (1 = spam). */
export interface SpamEmail {
  file: string;
  label: 0 | 1;
}

/** The emails of a split, in order: folders as listed above, files sorted by name. */
export async function listSpamSplit(source: DataSource, split: SplitName): Promise<SpamEmail[]> {
  const folders = split === 'evaluation' ? SPAM_SPLITS.evaluation : SPAM_SPLITS.older;
  const out: SpamEmail[] = [];
  for (const { folder, label } of folders) {
    const files = (await source.list(`spam-assassin/${folder}`)).filter((f) => f.endsWith('.txt'));
    files.sort();
    files.forEach((file, i) => {
      if (split === 'evaluation' || i % SPAM_SPLITS.calibrationEvery === 0) {
        out.push({ file, label });
      }
    });
  }
  return out;
}

/** Reads and tokenizes a split: ids [N, 128] (int32, row-major) and labels [N]. */
export async function loadSpamSplit(
  source: DataSource,
  split: SplitName,
): Promise<{ emails: SpamEmail[]; ids: Int32Array; labels: Uint8Array }> {
  const emails = await listSpamSplit(source, split);
  const L = EMAIL_TOKENIZER.maxLength;
  const ids = new Int32Array(emails.length * L);
  const labels = new Uint8Array(emails.length);
  const raws = await Promise.all(emails.map((e) => source.read(e.file)));
  raws.forEach((raw, i) => {
    tokenizeEmail(raw, ids, i * L);
    labels[i] = emails[i]!.label;
  });
  return { emails, ids, labels };
}
