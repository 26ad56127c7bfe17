// Lint rules are either errors or off, never warnings (a warning nobody reads is noise).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

/** One layer's import boundary: value imports matching `patterns` are errors, with the reason. */
function layer(files, patterns, message) {
  return [
    {
      files: [files.endsWith('**') ? `${files}/*.ts` : files],
      rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: patterns, message, allowTypeImports: true }] }] },
    },
  ];
}

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', '.data/**', 'coverage/**', 'test/support/*.cjs'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
      'no-eval': 'error',
      'no-implied-eval': 'error',
    },
  },
  // The layering (docs/ARCHITECTURE.md): controllers → services → queries; each folder imports only
  // what its layer may. Type-only imports are allowed (a controller may name the Db type it passes on).
  ...layer('src/controllers/**', ['**/queries/**', '**/db/**', '**/crypto/**', '**/audit/record.js'], 'controllers parse, call a service and render: no SQL, no transactions, no crypto'),
  ...layer('src/services/**', ['express', 'express-session'], 'services know no Express'),
  ...layer('src/queries/**', ['**/services/**', '**/controllers/**', 'express'], 'queries hold SQL only: no services, no Express'),
  ...layer('src/crypto/**', ['**/services/**', '**/controllers/**', 'express'], 'crypto depends on no service or controller'),
  ...layer('src/policies/**', ['**/queries/**', '**/db/**', 'knex'], 'policies are pure: no queries, no database'),
  ...layer('src/db/**', ['**/services/**', '**/controllers/**', '**/seeds/**'], 'the database layer imports no service and no seed'),
  {
    // The `enamel` launcher is plain JavaScript run by Node.
    files: ['src/cli/enamel-bin.mjs'],
    languageOptions: { globals: { process: 'readonly', URL: 'readonly' } },
  },
  {
    // The few progressive-enhancement scripts run in the browser.
    files: ['public/js/**'],
    languageOptions: {
      globals: { document: 'readonly', navigator: 'readonly', window: 'readonly', setTimeout: 'readonly' },
    },
  },
  {
    // Scripts and tests talk to the terminal on purpose.
    files: ['bench/**', 'src/cli/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
);
