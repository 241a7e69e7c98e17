// Locates the decode pool's worker script: the compiled .js beside it under dist/, or the .ts source through
// tsx when Ferry runs from sources (vitest, `npx tsx`).
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * The worker script beside this module: compiled .js under dist/. When this module itself runs from .ts
 * sources (vitest, tsx), the .ts sibling is loaded through tsx's tsImport (a devDependency, present whenever
 * sources run); `--import tsx` in a worker's execArgv does not register its hooks on Node 20.
 */
export function workerEntry(): { script: string | URL; eval: boolean } {
  if (!import.meta.url.endsWith('.ts'))
    return { script: new URL('./decode-worker.js', import.meta.url), eval: false };
  const api = tsxEsmApi();
  const target = new URL('./decode-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(api)}).then((m) => m.tsImport(${JSON.stringify(target)}, ${JSON.stringify(import.meta.url)}))`;
  return { script: code, eval: true };
}

/** URL of tsx's ESM API (its CJS flavour fails to load inside an eval'd worker). */
function tsxEsmApi(): string {
  const viaRequire = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
  return viaRequire.replace(/\.cjs$/, '.mjs');
}
