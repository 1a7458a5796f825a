import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Hono } from 'hono';
import type { AppEnv } from './env.js';
import { contentSecurityPolicy, csp } from './middleware/csp.js';
import { problem } from './problem.js';

/** Where /docs loads Scalar's bundle from: this server, never a CDN. */
export const SCALAR_BUNDLE_PATH = '/docs/scalar-api-reference.js';

/** Scalar's settings: the spec of this server; nothing that would call out (default fonts come from Scalar's font
 *  CDN; telemetry, the AI agent and the developer toolbar talk to Scalar's services). */
const SCALAR_CONFIG = {
  url: '/openapi.json',
  withDefaultFonts: false,
  telemetry: false,
  agent: { disabled: true },
  showDeveloperTools: 'never',
  showToolbar: 'never',
};

/** The API reference page: Scalar's standalone bundle from this origin, started on /openapi.json. */
export const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Floodgate API</title>
</head>
<body>
<div id="app"></div>
<script src="${SCALAR_BUNDLE_PATH}"></script>
<script>Scalar.createApiReference('#app', ${JSON.stringify(SCALAR_CONFIG)})</script>
</body>
</html>
`;

/**
 * Scalar's standalone browser bundle, from the installed, lockfile-pinned @scalar/api-reference: `npm run build`
 * copies it to dist/api/assets/ (the runtime image has no dev dependencies); from a checkout it is read from
 * node_modules.
 */
export function scalarBundleFile(): string {
  const copied = fileURLToPath(new URL('./assets/scalar-api-reference.js', import.meta.url));
  if (existsSync(copied)) return copied;
  return join(dirname(createRequire(import.meta.url).resolve('@scalar/api-reference')), 'browser', 'standalone.js');
}

let bundle: Buffer | undefined;

/** /docs (the reference of /openapi.json) and the bundle it runs, both served by the API itself. */
export function mountDocs(app: Hono<AppEnv>) {
  app.get(SCALAR_BUNDLE_PATH, (c) => {
    try {
      bundle ??= readFileSync(scalarBundleFile());
    } catch {
      return problem(c, 404, { type: '/problems/not-found', title: 'Not found', detail: 'the API reference bundle is not installed (npm ci)' });
    }
    return c.body(new Uint8Array(bundle), 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' });
  });
  app.get('/docs', csp(contentSecurityPolicy(DOCS_PAGE)), (c) => c.html(DOCS_PAGE));
}
