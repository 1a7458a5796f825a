import type { Hook, z } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from './env.js';
import { problem, type FieldError } from './problem.js';

type Issue = { path: PropertyKey[]; message: string; code?: string; keys?: string[] };

/** Zod issues -> [{field, detail}] with dotted paths (unknown keys are named one by one). */
export function fieldErrors(issues: readonly Issue[]): FieldError[] {
  return issues.flatMap((i) => {
    const base = i.path.map(String).join('.');
    if (i.code === 'unrecognized_keys' && i.keys) {
      return i.keys.map((k) => ({ field: base ? `${base}.${k}` : k, detail: 'unknown field' }));
    }
    return [{ field: base || '(body)', detail: i.message }];
  });
}

/** Every schema failure becomes one 400 problem listing each offending field. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result, c) => {
  if (!result.success) {
    return problem(c, 400, {
      type: '/problems/validation',
      title: 'Invalid request',
      detail: `${result.target} did not match the schema`,
      errors: fieldErrors(result.error.issues as readonly Issue[]),
    });
  }
  return undefined;
};

/**
 * The hot route's validators (POST /api/bookings), answering exactly as the validators @hono/zod-openapi's `openapi()`
 * adds for `request.headers` and a required JSON body (same 400 validation problem through validationHook, same 415
 * and malformed-JSON 400; api/validate.test.ts compares them), at a fraction of their cost:
 * - zod-validator parses with `safeParseAsync`, which skips zod 4's compiled (JIT) object parser; these parse with
 *   `safeParse`, which uses it. (So the schemas must have no async checks: safeParse throws on one.)
 * - the header validator reads every header into an object (`c.req.header()`), which makes @hono/node-server build a
 *   full web Headers object (each header validated by undici); `validHeaders` reads only the schema's own headers
 *   with `c.req.header(name)`, which node-server answers from node's parsed headers.
 * The route is documented as before (bookings.ts registers its route for the document and mounts it with these).
 */
export function validHeaders<S extends z.ZodObject>(schema: S) {
  const names = Object.keys(schema.shape).map((n) => n.toLowerCase());
  return createMiddleware<AppEnv, string, { in: { header: z.input<S> }; out: { header: z.output<S> } }>(async (c, next) => {
    const value: Record<string, string> = {};
    for (const name of names) {
      const v = c.req.header(name);
      if (v !== undefined) value[name] = v;
    }
    const result = schema.safeParse(value);
    if (!result.success) return validationHook({ ...result, target: 'header' }, c) as Response;
    c.req.addValidatedData('header', result.data as object);
    await next();
  });
}

/** As @hono/zod-openapi's media type check of a required `application/json` body. */
const JSON_REQUEST = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/** A required JSON body, parsed synchronously (see validHeaders). */
export function validJson<S extends z.ZodType>(schema: S) {
  return createMiddleware<AppEnv, string, { in: { json: z.input<S> }; out: { json: z.output<S> } }>(async (c, next) => {
    const contentType = c.req.header('content-type');
    if (contentType ? !JSON_REQUEST.test(contentType) : (await c.req.text()).length > 0) {
      throw new HTTPException(415, { message: 'Unsupported Media Type' });
    }
    let value: unknown = {};
    if (contentType) {
      try {
        value = await c.req.json();
      } catch {
        throw new HTTPException(400, { message: 'Malformed JSON in request body' });
      }
    }
    const result = schema.safeParse(value);
    if (!result.success) return validationHook({ ...result, target: 'json' }, c) as Response;
    c.req.addValidatedData('json', result.data as object);
    await next();
  });
}
