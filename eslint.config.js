// Lint rules are either errors or off, never warnings (a warning nobody reads is noise).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

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
