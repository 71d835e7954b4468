import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { parseNonNegative, parseNumber, parsePositiveInt, parseServerUrl } from './shared.ts';

describe('argument parsers', () => {
  it('parsePositiveInt takes 1, 2, 3600 and refuses 0, -5, 1.5, abc', () => {
    expect([1, 2, 3600].map((n) => parsePositiveInt(String(n)))).toEqual([1, 2, 3600]);
    for (const bad of ['0', '-5', '1.5', 'abc', ''])
      expect(() => parsePositiveInt(bad), bad).toThrow(InvalidArgumentError);
  });
  it('parseNumber takes -1.5, 0, 99.99 and refuses abc, NaN, Infinity and an empty value', () => {
    expect(['-1.5', '0', '99.99'].map(parseNumber)).toEqual([-1.5, 0, 99.99]);
    for (const bad of ['abc', 'NaN', 'Infinity', ''])
      expect(() => parseNumber(bad), bad).toThrow('is not a number');
  });
  it('parseNonNegative takes 0, 2, 0.5 and refuses -1, abc, Infinity and an empty value', () => {
    expect(['0', '2', '0.5'].map(parseNonNegative)).toEqual([0, 2, 0.5]);
    for (const bad of ['-1', 'abc', 'Infinity', ' '])
      expect(() => parseNonNegative(bad), bad).toThrow(InvalidArgumentError);
  });
  it('parseServerUrl takes http and https URLs and says what is wrong with others', () => {
    expect(parseServerUrl('http://127.0.0.1:8787')).toBe('http://127.0.0.1:8787');
    expect(parseServerUrl('https://quant.example.org/')).toBe('https://quant.example.org/');
    // a host without a scheme: 'localhost:' reads as the scheme, '127.0.0.1:' as nothing
    expect(() => parseServerUrl('localhost:8787')).toThrow(
      "'localhost:8787' is not an http or https URL",
    );
    expect(() => parseServerUrl('127.0.0.1:8787')).toThrow("'127.0.0.1:8787' is not a URL");
    expect(() => parseServerUrl('notaurl')).toThrow(
      "'notaurl' is not a URL (for example http://127.0.0.1:8787)",
    );
    expect(() => parseServerUrl('ftp://x')).toThrow("'ftp://x' is not an http or https URL");
  });
});
