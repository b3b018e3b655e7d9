// Lint rules for the front end (`npm run lint`, part of `npm test`): typescript-eslint's recommended
// rules, React's rules of hooks (exhaustive-deps included), Vite's fast-refresh boundaries, and the
// project's size limits (modules under ~300 lines, functions under ~60) so they are checked, not hoped for.
import js from '@eslint/js';
import reactHooks from 'eslint-plugin-react-hooks';
import { reactRefresh } from 'eslint-plugin-react-refresh';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig([
  globalIgnores(['dist', 'node_modules']),
  {
    files: ['**/*.{js,mjs,ts,tsx}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['src/**/*.{ts,tsx}'],
    extends: [reactHooks.configs.flat.recommended, reactRefresh.configs.vite()],
    languageOptions: { globals: globals.browser },
    rules: {
      // A missing dependency is a stale-closure bug, not a style point: fail, do not warn.
      'react-hooks/exhaustive-deps': 'error',
      // A leftover console.log in the app is debugging noise; errors and warnings are reports.
      'no-console': ['error', { allow: ['error', 'warn'] }],
      'max-lines': ['error', { max: 300, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
  {
    // A test file's describe() holds its cases, so its length says nothing about a function's.
    files: ['src/**/*.test.{ts,tsx}', 'src/testing/**'],
    rules: { 'max-lines-per-function': 'off', 'react-refresh/only-export-components': 'off' },
  },
  {
    files: ['vite.config.ts', 'eslint.config.js'],
    languageOptions: { globals: globals.node },
  },
  {
    // The browser scenarios run in Node but hand page.evaluate() callbacks to the page.
    files: ['e2e/**/*.mjs'],
    languageOptions: { globals: { ...globals.node, ...globals.browser } },
  },
]);
