/* global process, console */
// Copies the non-TypeScript files the compiled code reads at run time into dist/, next to the .js that reads them:
//   lua/**/*.lua            -> dist/lua/          (lua/commands.js loads scripts from its own folder, includes/ kept)
//   db/migrations/*.sql     -> dist/db/migrations/ (db/migrate.js runs the migrations next to it)
//   Scalar's standalone bundle (@scalar/api-reference, a dev dependency pinned in package-lock.json)
//                           -> dist/api/assets/scalar-api-reference.js (/docs serves it; the image has no dev deps)
// Used by `npm run build` after `tsc -p tsconfig.build.json`. Plain Node, no dependencies.
// Usage: node scripts/copy-assets.mjs [outDir]   (outDir defaults to dist/; tests pass a temporary folder)
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = process.argv[2] ? resolve(process.argv[2]) : join(root, 'dist');

/** Files under `dir` (recursively when `deep`) whose name ends with `ext`, as paths relative to `dir`. */
function list(dir, ext, deep) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (deep) out.push(...list(join(dir, entry.name), ext, deep).map((f) => join(entry.name, f)));
    } else if (entry.isFile() && entry.name.endsWith(ext)) {
      out.push(entry.name);
    }
  }
  return out.sort();
}

function copy(fromDir, toDir, ext, deep) {
  const from = join(root, fromDir);
  if (!existsSync(from)) throw new Error(`copy-assets: ${fromDir}/ is missing`);
  const files = list(from, ext, deep);
  if (files.length === 0) throw new Error(`copy-assets: no *${ext} file in ${fromDir}/`);
  for (const file of files) {
    const target = join(dist, toDir, file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(from, file), target);
  }
  const out = join(dist, toDir);
  const shown = relative(root, out).startsWith('..') ? out : relative(root, out);
  console.log(`copy-assets: ${files.length} ${ext} file(s) ${fromDir}/ -> ${shown}/`);
}

copy('lua', 'lua', '.lua', true);
copy(join('db', 'migrations'), join('db', 'migrations'), '.sql', false);

const scalar = join(root, 'node_modules', '@scalar', 'api-reference', 'dist', 'browser', 'standalone.js');
if (!existsSync(scalar)) throw new Error('copy-assets: @scalar/api-reference is not installed (npm ci)');
mkdirSync(join(dist, 'api', 'assets'), { recursive: true });
copyFileSync(scalar, join(dist, 'api', 'assets', 'scalar-api-reference.js'));
console.log('copy-assets: @scalar/api-reference standalone bundle -> api/assets/scalar-api-reference.js');
