import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** A restricted-import pattern for the top-level folder `dir` (a relative path up and into it), from any depth. */
const folder = (dir, message, extra = {}) => ({ regex: `^(\\.\\./)+${dir}/`, caseSensitive: true, message, ...extra });

function layers() {
  const bench = folder('bench', 'bench/ is the benchmark: nothing else imports it');
  const tests = folder('test', 'test/ is test code: the product does not import it');
  const scripts = folder('scripts', 'scripts/ are entry points and tools: the product does not import them');
  const rule = (files, patterns) => ({
    files,
    ignores: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [...patterns, bench, tests, scripts] }] },
  });
  const notBelowWiring = [folder('wiring', 'wiring/ is the top: only entry points import it')];
  return [
    // everything (tests included): no bench/ outside bench/
    { files: ['**/*.ts'], ignores: ['bench/**'], rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [bench] }] } },
    rule(['api/**/*.ts'], [
      folder('workers', 'api/ and workers/ never import each other: share through engine/ or integrations/'),
      folder('lua', 'api/ reaches Redis scripts only through engine/'),
    ]),
    rule(['workers/**/*.ts'], [
      folder('api', 'api/ and workers/ never import each other: share through engine/ or integrations/'),
      folder('lua', 'workers/ reach Redis scripts only through engine/'),
    ]),
    rule(['wiring/**/*.ts'], [
      folder('api', 'wiring/ builds the runtime; the entry points (api/main.ts, workers/main.ts) import it, not the reverse'),
      folder('workers', 'wiring/ builds the runtime; the entry points (api/main.ts, workers/main.ts) import it, not the reverse'),
    ]),
    rule(['engine/**/*.ts'], [
      { group: ['hono', 'hono/*', '@hono/*', 'bullmq'], message: 'the engine has no HTTP or queue code' },
      ...['api', 'workers', 'integrations', 'wiring', 'db'].map((d) =>
        folder(d, 'engine/ uses lua/ and platform/ only; adapters reach it through its ports (engine/payments/provider.ts, engine/jobs.ts)'),
      ),
    ]),
    rule(['integrations/**/*.ts'], [
      // the port types live with the engine; an adapter may name them, never run engine code
      folder('engine', 'integrations/ implement the engine\'s ports: type imports of engine/ only', { allowTypeImports: true }),
      ...['api', 'workers', 'lua', 'db'].map((d) => folder(d, 'integrations/ sit below the engine: platform/ and engine port types only')),
      ...notBelowWiring,
    ]),
    rule(['platform/**/*.ts', 'db/**/*.ts'], [
      ...['engine', 'api', 'workers', 'integrations'].map((d) => folder(d, 'lower layers do not import upper ones')),
      ...notBelowWiring,
    ]),
    rule(['lua/**/*.ts'], [
      ...['engine', 'api', 'workers', 'integrations', 'platform', 'db'].map((d) => folder(d, 'lua/ is the bottom layer: it imports no other folder')),
      ...notBelowWiring,
    ]),
  ];
}

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.data/**', 'bench/results/**', 'bench/k6/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-empty-pattern': 'off',
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'read settings through platform/config.ts' }],
    },
  },
  // The arrows between folders (docs/architecture.md): entry points and wiring/ at the top; api/ and workers/ side by
  // side, never importing each other; then integrations/ (adapters to external services, behind the engine's ports) and
  // engine/; then lua/ and platform/. Nothing outside bench/ imports bench/. Tests (*.test.ts, test/) cross the layers
  // on purpose and are held to the bench rule only. Each block lists the whole rule for its files: a later block that
  // sets no-restricted-imports replaces an earlier one.
  ...layers(),
  {
    files: ['platform/config.ts', 'test/**/*.ts', '**/*.test.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // `expect(p).rejects…` not awaited checks nothing before the test ends (and a failure surfaces later, elsewhere)
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector:
            'ExpressionStatement > CallExpression[callee.object.property.name=/^(rejects|resolves)$/], ' +
            'ExpressionStatement > CallExpression[callee.object.object.property.name=/^(rejects|resolves)$/]',
          message: 'await expect(…).rejects / .resolves (or return it)',
        },
      ],
    },
  },
);
