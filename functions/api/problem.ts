/**
 * RFC 9457 problem details: every API error is `application/problem+json` with a type, a title,
 * the status, a human-readable detail and, for invalid input, one entry per problem with the
 * field path, what was expected and what was given.
 */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

/** One invalid field. */
export interface FieldProblem {
  path: string;
  expected: string;
  got: string;
}

/** A problem document. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldProblem[];
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An error that the API turns into a problem response. */
export class ProblemError extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly detail: string,
    readonly extra: {
      errors?: FieldProblem[];
      headers?: Record<string, string>;
      slug?: string;
    } = {},
  ) {
    super(status, { message: detail });
  }
}

/** The problem response for an error status. */
export function problemResponse(
  status: number,
  detail: string,
  instance: string,
  extra: ProblemError['extra'] = {},
): Response {
  const body: Problem = {
    type: `https://cann-quant.dev/problems/${extra.slug ?? String(status)}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail,
    instance,
    ...(extra.errors ? { errors: extra.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/problem+json', ...extra.headers },
  });
}

/** hono onError: problem responses for ProblemError/HTTPException, a 500 problem otherwise. */
export function onError(err: Error, c: Context): Response {
  const path = new URL(c.req.url).pathname;
  if (err instanceof ProblemError) return problemResponse(err.status, err.detail, path, err.extra);
  if (err instanceof HTTPException) return problemResponse(err.status, err.message, path);
  console.error(`${c.req.method} ${path}:`, err);
  return problemResponse(500, 'internal error; the request was not processed', path);
}
