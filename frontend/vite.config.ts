/// <reference types="vitest/config" />
// Build, dev server and unit-test settings for the abstract editor.
import { fileURLToPath, URL } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev` serves the editor with hot reload and forwards API calls to the
// Flask server (`make run` or gunicorn) so the browser sees a single origin.
const apiTarget = process.env.AUTOCOMPLETE_API_URL ?? 'http://127.0.0.1:8000';
const apiPaths = ['/generate', '/health', '/v1', '/metrics', '/openapi.json', '/docs'];

export default defineConfig({
  // Relative asset URLs let Flask (or any static host) serve dist/ from any path.
  base: './',
  plugins: [react()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: {
    proxy: Object.fromEntries(apiPaths.map((path) => [path, { target: apiTarget, changeOrigin: true }])),
  },
  build: {
    // MUI alone is ~300 kB minified; one chunk keeps the Flask static route simple.
    chunkSizeWarningLimit: 1000,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/testing/setup-tests.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    restoreMocks: true,
    // Limits that catch a hung test, not a busy machine: a component test that takes 1.5 s alone
    // took up to 33 s at nice 19 with both cores busy (load average 7), and a wait for a render
    // can take longer than the default 1 s.
    testTimeout: 120_000,
    expect: { poll: { timeout: 30_000 } },
  },
});
