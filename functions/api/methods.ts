/**
 * 405 Method Not Allowed: which methods the app's routes accept at a path, so that a request
 * with the wrong method gets 405 and an `Allow` header (RFC 9110 §15.5.6) instead of a 404
 * that says the resource does not exist.
 */

/** A registered route, as hono lists it in `app.routes`. */
export interface RouteEntry {
  path: string;
  method: string;
  handler?: unknown;
}

const HEAD_ONLY = Symbol('head-only');

/**
 * Marks a GET handler that serves HEAD only. hono answers a HEAD request with the GET route of
 * the path (and drops the body); a route registered for 'HEAD' itself is never reached. The
 * handler refuses GET itself; this mark keeps GET out of the Allow list of the path's 405s.
 */
export function headOnly<H extends (...args: never[]) => unknown>(handler: H): H {
  return Object.assign(handler, { [HEAD_ONLY]: true });
}

/**
 * A hono route path as an anchored regular expression: `:name` matches one segment,
 * `:name{re}` matches `re`, `*` anything.
 */
export function routePattern(path: string): RegExp {
  let source = '';
  for (let i = 0; i < path.length; ) {
    const ch = path[i]!;
    if (ch === ':') {
      let j = i + 1;
      while (j < path.length && /[\w$]/.test(path[j]!)) j++;
      if (path[j] === '{') {
        // a custom pattern: up to the matching brace (patterns may hold {m,n} quantifiers)
        let depth = 0;
        let k = j;
        for (; k < path.length; k++) {
          if (path[k] === '{') depth++;
          else if (path[k] === '}' && --depth === 0) break;
        }
        source += `(?:${path.slice(j + 1, k)})`;
        i = k + 1;
      } else {
        source += '[^/]+';
        i = j;
      }
    } else if (ch === '*') {
      source += '.*';
      i++;
    } else {
      source += ch.replace(/[.+?^$()[\]\\|{}]/g, '\\$&');
      i++;
    }
  }
  return new RegExp(`^${source}/?$`);
}

/**
 * The methods some route accepts at `path`, sorted, HEAD included wherever GET is (hono answers
 * HEAD with the GET handler). Middleware (method ALL) does not count. Empty: no route at all.
 */
export function allowedMethods(routes: readonly RouteEntry[], path: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (route.method === 'ALL' || !routePattern(route.path).test(path)) continue;
    const head = route.method === 'GET' || route.method === 'HEAD';
    if (!(head && (route.handler as { [HEAD_ONLY]?: boolean } | undefined)?.[HEAD_ONLY]))
      methods.add(route.method);
    if (head) methods.add('HEAD');
  }
  return [...methods].sort();
}
