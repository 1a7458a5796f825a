import { randomBytes } from 'node:crypto';
import type { FormObject, FormValue } from './types.js';

/** Stripe's wire format as the double speaks it: form bodies, parameter readers, API errors, ids and timestamps. */

export type Answer = { status: number; body: unknown };

/** A Stripe API error. `save: false` for errors raised before the request executed (not saved for its key). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: { type: string; code?: string; message: string; param?: string; decline_code?: string; [k: string]: unknown },
    readonly save = false,
  ) {
    super(body.message);
  }
}

export const ERROR_TYPE_BY_STATUS: Record<number, string> = { 400: 'invalid_request_error', 401: 'invalid_request_error', 402: 'card_error', 404: 'invalid_request_error', 409: 'idempotency_error', 429: 'invalid_request_error' };

export const rand = (n: number) => randomBytes(n).toString('base64url').replace(/[-_]/g, 'x').slice(0, n);
export const nowSec = () => Math.floor(Date.now() / 1000);

/** Parses Stripe's form encoding (`metadata[bookingId]=x`, `payment_method_types[0]=card`) into nested values. */
export function parseStripeForm(raw: string): FormObject {
  const root: FormObject = {};
  for (const [key, value] of new URLSearchParams(raw)) {
    const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(key);
    const path = m ? [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!)] : [key];
    let node: { [key: string]: FormValue } = root;
    for (const seg of path.slice(0, -1)) {
      const next = node[seg];
      if (typeof next === 'object' && !Array.isArray(next)) node = next;
      else node = node[seg] = {};
    }
    node[path.at(-1)!] = value;
  }
  return arraysFromIndexes(root) as FormObject;
}

function arraysFromIndexes(v: FormValue): FormValue {
  if (typeof v === 'string' || Array.isArray(v)) return v;
  const keys = Object.keys(v);
  const mapped = Object.fromEntries(keys.map((k) => [k, arraysFromIndexes(v[k]!)]));
  const isList = keys.length > 0 && keys.every((k, i) => k === String(i));
  return isList ? keys.map((k) => mapped[k]!) : mapped;
}

export function invalid(message: string, param: string) {
  return new ApiError(400, { type: 'invalid_request_error', code: 'parameter_invalid', param, message });
}

/** A string parameter, or undefined. */
export const field = (body: FormObject, name: string): string | undefined => {
  const v = body[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw invalid(`Invalid ${name}: must be a string`, name);
  return v;
};

/** A non-negative integer parameter, or undefined. */
export const intField = (body: FormObject, name: string): number | undefined => {
  const v = field(body, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new ApiError(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', param: name, message: `Invalid integer: ${v}` });
  return Number(v);
};

/** A hash-of-strings parameter (metadata), `{}` when absent or empty. */
export const stringMap = (body: FormObject, name: string): Record<string, string> => {
  const v = body[name];
  if (v === undefined || v === '') return {};
  if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw invalid(`Invalid ${name}: must be a hash of strings`, name);
  return { ...(v as Record<string, string>) };
};

export function dropUndefined<T extends Record<string, unknown>>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export function assertNever(x: never): never {
  throw new Error(`unexpected value: ${JSON.stringify(x)}`);
}
