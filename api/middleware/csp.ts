import { createHash } from 'node:crypto';
import { createMiddleware } from 'hono/factory';

/** Executable inline scripts: no src, and no type or a JavaScript one (a JSON data block is never run). */
const INLINE_SCRIPT = /<script\b([^>]*)>([\s\S]*?)<\/script>/gi;
const TYPE = /\btype\s*=\s*(["']?)([^"'\s>]*)\1/i;
const runs = (attrs: string) => {
  const type = TYPE.exec(attrs)?.[2]?.toLowerCase();
  return type === undefined || type === '' || type === 'module' || type === 'text/javascript' || type === 'application/javascript';
};

/**
 * The Content-Security-Policy of an HTML page rendered by `html` (a trusted rendering: the server's own template, not
 * a response that may carry a visitor's input): scripts only from this origin plus that page's inline scripts, each
 * allowed by its SHA-256, so any other script (injected, or a third-party tag) does not run; data only from this
 * origin (no CDN, no beacon). Inline styles stay allowed: Scalar's bundle inserts its own.
 */
export function contentSecurityPolicy(html: string): string {
  const hashes = new Set<string>();
  for (const [, attrs = '', body = ''] of html.matchAll(INLINE_SCRIPT)) {
    if (/\bsrc\s*=/i.test(attrs) || !runs(attrs)) continue;
    hashes.add(`'sha256-${createHash('sha256').update(body, 'utf8').digest('base64')}'`);
  }
  return [
    "default-src 'self'",
    `script-src 'self'${[...hashes].map((h) => ` ${h}`).join('')}`,
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
  ].join('; ');
}

/** Sends `policy` as the Content-Security-Policy of the routes it is mounted on (set before the handler runs). */
export const csp = (policy: string) =>
  createMiddleware(async (c, next) => {
    c.header('content-security-policy', policy);
    await next();
  });
