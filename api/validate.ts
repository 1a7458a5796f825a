import type { Hook } from '@hono/zod-openapi';
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
