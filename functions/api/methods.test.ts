/** Route patterns and the Allow list of 405 responses. */
import { describe, expect, it } from 'vitest';
import { allowedMethods, headOnly, routePattern } from './methods.ts';

describe('routePattern', () => {
  it('matches one segment per :param, custom patterns and wildcards', () => {
    expect(routePattern('/api/v1/submissions/:id').test('/api/v1/submissions/sub_1')).toBe(true);
    expect(routePattern('/api/v1/submissions/:id').test('/api/v1/submissions/a/b')).toBe(false);
    expect(routePattern('/api/v1/submissions/:id').test('/api/v1/submissions/')).toBe(false);
    const badge = routePattern('/badge/:file{[^/]+\\.(?:svg|json)}');
    expect(badge.test('/badge/sub_1.svg')).toBe(true);
    expect(badge.test('/badge/sub_1.png')).toBe(false);
    expect(routePattern('/x/:n{[0-9]{2,3}}').test('/x/123')).toBe(true);
    expect(routePattern('/x/:n{[0-9]{2,3}}').test('/x/1')).toBe(false);
    expect(routePattern('/api/v1/admin/*').test('/api/v1/admin/tasks/a')).toBe(true);
    // literal characters are literal: '.' is not a wildcard
    expect(routePattern('/openapi.json').test('/openapiXjson')).toBe(false);
  });
});

describe('allowedMethods', () => {
  const routes = [
    { path: '/api/v1/admin/*', method: 'ALL' },
    { path: '/api/v1/submissions', method: 'POST' },
    { path: '/api/v1/submissions/:id', method: 'GET' },
    { path: '/api/v1/tokens', method: 'POST' },
    { path: '/api/v1/tokens/:id', method: 'DELETE' },
    { path: '/api/v1/admin/blobs/:sha', method: 'HEAD' },
  ];
  it('lists the methods of every matching route, HEAD beside GET, middleware left out', () => {
    expect(allowedMethods(routes, '/api/v1/submissions')).toEqual(['POST']);
    expect(allowedMethods(routes, '/api/v1/submissions/sub_1')).toEqual(['GET', 'HEAD']);
    expect(allowedMethods(routes, '/api/v1/tokens/t1')).toEqual(['DELETE']);
    expect(allowedMethods(routes, '/api/v1/admin/blobs/ab')).toEqual(['HEAD']);
    expect(allowedMethods(routes, '/api/v1/admin/nothing')).toEqual([]);
    expect(allowedMethods(routes, '/api/v1/nothing')).toEqual([]);
  });
  it('a head-only GET route allows HEAD alone', () => {
    const blob = [{ path: '/api/v1/admin/blobs/:sha', method: 'GET', handler: headOnly(() => 1) }];
    expect(allowedMethods(blob, '/api/v1/admin/blobs/ab')).toEqual(['HEAD']);
  });
});
