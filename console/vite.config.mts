import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Served by the all-in-one at /console; JSX is compiled by Vite's built-in transform (no plugin needed
// for a production build). No inline module preload polyfill: the CSP allows no inline script.
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  // The generated typed client of the API (packages/client, a workspace package), from its sources.
  resolve: { alias: { '@custodian/client': fileURLToPath(new URL('../packages/client/src/index.ts', import.meta.url)) } },
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      // The component library marks its modules "use client" (a server-components hint); harmless here.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
});
