import { describe, expect, it } from 'vitest';
import {
  EMAIL_TOKENIZER,
  emailText,
  fnv1a32,
  tokenIdsOfText,
  tokenizeEmail,
} from './email-tokenizer.ts';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a32(enc(''))).toBe(0x811c9dc5);
    expect(fnv1a32(enc('a'))).toBe(0xe40c292c);
    expect(fnv1a32(enc('foobar'))).toBe(0xbf9cf968);
  });
});

describe('emailText', () => {
  it('keeps the subject (with folded lines) and the body, drops other headers', () => {
    const raw = enc('X: y\nSubject: s1\nsubject: s2\n \tcont\n\r\nbody');
    expect(dec(emailText(raw))).toBe(' s1\nbody');
    expect(dec(emailText(enc('Subject: a\n b\nX: c\n d\n\nz')))).toBe(' a\n b\nz');
  });

  it('treats a message without a blank line as all header', () => {
    expect(dec(emailText(enc('Subject: only header')))).toBe(' only header\n');
    expect(dec(emailText(enc('From: x\nTo: y')))).toBe('\n');
  });
});

describe('tokenIdsOfText', () => {
  it('hashes maximal [a-z0-9$!] runs of the ASCII-lowercased bytes', () => {
    // 'a' -> 0xe40c292c; low 13 bits 0x092c = 2348; + 2 = 2350.
    expect(tokenIdsOfText(enc('A'))).toEqual([2350]);
    // 'foobar' -> 0xbf9cf968; low 13 bits 0x1968 = 6504; + 2 = 6506.
    expect(tokenIdsOfText(enc('..FooBar__'))).toEqual([6506]);
    // Non-ASCII bytes (é = c3 a9) separate tokens: 'caf' then nothing.
    const ids = tokenIdsOfText(
      enc(' Win $100 NOW!!!\r\n\tfolded Line\r\nBody café text_here 42\n'),
    );
    expect(ids).toEqual([2907, 2520, 6154, 1437, 5673, 6519, 1535, 3648, 1485, 1413]);
  });

  it('stops at the limit', () => {
    expect(tokenIdsOfText(enc('a a a a'), 2)).toEqual([2350, 2350]);
  });
});

describe('tokenizeEmail', () => {
  it('prepends CLS, pads with PAD to 128', () => {
    const ids = tokenizeEmail(enc('Subject: A\n\nFooBar'));
    expect(ids.length).toBe(EMAIL_TOKENIZER.maxLength);
    expect(Array.from(ids.subarray(0, 4))).toEqual([1, 2350, 6506, 0]);
    expect(ids.subarray(3).every((v) => v === 0)).toBe(true);
  });

  it('truncates to 127 tokens after CLS', () => {
    const ids = tokenizeEmail(enc(`Subject: x\n\n${'a '.repeat(1000)}`));
    expect(ids[0]).toBe(1);
    expect(ids[127]).toBe(2350);
    expect(ids.length).toBe(128);
  });

  it('writes at an offset and checks room', () => {
    const out = new Int32Array(256);
    tokenizeEmail(enc('\nA'), out, 128);
    expect(Array.from(out.subarray(128, 131))).toEqual([1, 2350, 0]);
    expect(() => tokenizeEmail(enc('a'), out, 200)).toThrow(RangeError);
  });
});
