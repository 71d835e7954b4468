/**
 * The hashed-word email tokenizer of the `spam-transformer` task. Its Python twin is
 * zoo/common/email_tokenizer.py; both must produce identical ids for every email (the task's
 * test checks a sha256 over the whole evaluation split against the one Python recorded).
 *
 * Specification (bytes in, ids out; no text decoding anywhere):
 * 1. Input: the raw bytes of one RFC 822 message (the corpus' `.txt` file).
 * 2. Header/body: lines end at LF (0x0A). The first line that is empty or exactly "\r" ends the
 *    header; the body is every byte after that line's LF. With no such line the whole message is
 *    header and the body is empty.
 * 3. Subject: the first header line whose first 8 bytes, ASCII-lowercased, are `subject:`. Its
 *    value is the rest of that line plus every directly following header line that starts with
 *    SP or HT (folded continuation), joined with LF. No such line: empty subject. All other
 *    headers are dropped (no server names or dates for the model to key on).
 * 4. Text = subject + LF + body. Bytes A-Z are lowercased (+0x20); nothing else changes.
 * 5. Tokens: maximal runs of bytes in [a-z0-9$!]; every other byte (including all bytes >= 0x80)
 *    separates tokens.
 * 6. Token id = 2 + (FNV-1a 32-bit hash of the token's bytes mod 8192). FNV-1a: h = 0x811c9dc5;
 *    per byte: h ^= b; h = (h * 0x01000193) mod 2^32.
 * 7. Sequence: [1 (CLS), first 127 token ids], right-padded with 0 (PAD) to 128.
 */

/** Tokenizer constants: bucket count, sequence length and the two reserved ids. */
export const EMAIL_TOKENIZER = {
  buckets: 8192,
  maxLength: 128,
  padId: 0,
  clsId: 1,
  /** Ids run 0..buckets+1: PAD, CLS, then the hash buckets. */
  vocabSize: 8194,
} as const;

const LF = 0x0a;
const CR = 0x0d;
const SUBJECT = [0x73, 0x75, 0x62, 0x6a, 0x65, 0x63, 0x74, 0x3a]; // "subject:"

/** Lowercases one ASCII byte (A-Z only). */
function lower(b: number): number {
  return b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
}

/** True for bytes that belong to a token after lowercasing: a-z, 0-9, '$', '!'. */
function isTokenByte(b: number): boolean {
  return (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x24 || b === 0x21;
}

/**
 * FNV-1a 32-bit hash of `bytes[start, end)`.
 * @example fnv1a32(new TextEncoder().encode('a')) // 0xe40c292c
 */
export function fnv1a32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Steps 2-3 of the spec: the subject value and the body of a raw message (not lowercased). */
export function emailText(raw: Uint8Array): Uint8Array {
  const subject: Uint8Array[] = [];
  let inSubject = false;
  let bodyStart = raw.length;
  let pos = 0;
  while (pos < raw.length) {
    let end = raw.indexOf(LF, pos);
    const next = end < 0 ? raw.length : end + 1;
    if (end < 0) end = raw.length;
    const blank = end === pos || (end === pos + 1 && raw[pos] === CR);
    if (blank) {
      bodyStart = next;
      break;
    }
    const first = raw[pos]!;
    if (inSubject && (first === 0x20 || first === 0x09)) {
      subject.push(raw.subarray(pos, end));
    } else {
      inSubject = false;
      if (
        subject.length === 0 &&
        end - pos >= 8 &&
        SUBJECT.every((c, k) => lower(raw[pos + k]!) === c)
      ) {
        subject.push(raw.subarray(pos + 8, end));
        inSubject = true;
      }
    }
    pos = next;
  }
  const body = raw.subarray(bodyStart);
  let size = body.length + 1;
  for (const part of subject) size += part.length;
  size += Math.max(0, subject.length - 1);
  const out = new Uint8Array(size);
  let o = 0;
  subject.forEach((part, k) => {
    if (k > 0) out[o++] = LF;
    out.set(part, o);
    o += part.length;
  });
  out[o++] = LF;
  out.set(body, o);
  return out;
}

/**
 * Steps 4-6: the token ids of a text (bytes), at most `limit` of them.
 * @example tokenIdsOfText(new TextEncoder().encode('Hi!')) // [2 + (fnv1a32('hi!') % 8192)]
 */
export function tokenIdsOfText(text: Uint8Array, limit = Number.POSITIVE_INFINITY): number[] {
  const ids: number[] = [];
  const token = new Uint8Array(text.length);
  let len = 0;
  const flush = (): void => {
    if (len > 0) ids.push(2 + (fnv1a32(token, 0, len) % EMAIL_TOKENIZER.buckets));
    len = 0;
  };
  for (let i = 0; i < text.length && ids.length < limit; i++) {
    const b = lower(text[i]!);
    if (isTokenByte(b)) token[len++] = b;
    else flush();
  }
  if (ids.length < limit) flush();
  return ids;
}

/**
 * The full pipeline: the 128 model input ids of one raw message, written into `out` at
 * `offset` (or into a fresh array).
 */
export function tokenizeEmail(
  raw: Uint8Array,
  out: Int32Array = new Int32Array(EMAIL_TOKENIZER.maxLength),
  offset = 0,
): Int32Array {
  const L = EMAIL_TOKENIZER.maxLength;
  if (offset < 0 || offset + L > out.length) {
    throw new RangeError(
      `tokenizeEmail: no room for ${L} ids at offset ${offset} of ${out.length}`,
    );
  }
  const ids = tokenIdsOfText(emailText(raw), L - 1);
  out.fill(EMAIL_TOKENIZER.padId, offset, offset + L);
  out[offset] = EMAIL_TOKENIZER.clsId;
  for (let k = 0; k < ids.length; k++) out[offset + 1 + k] = ids[k]!;
  return out;
}
