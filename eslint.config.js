import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
  {
    // Imports flow api | workers -> engine -> lua | platform: the engine knows nothing of HTTP, queues or env.
    files: ['engine/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['hono', 'hono/*', '@hono/*', 'bullmq', '**/api/**', '**/workers/**'], message: 'the engine has no HTTP or queue code' },
          ],
        },
      ],
    },
  },
  {
    files: ['lua/**/*.ts', 'platform/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/engine/**', '**/api/**', '**/workers/**'], message: 'lower layers do not import upper ones' }] }],
    },
  },
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
