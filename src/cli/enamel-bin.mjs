#!/usr/bin/env node
// The `enamel` command (package.json "bin"): the compiled CLI when there is one (the image, after
// `npm run build`), else the TypeScript sources through tsx (a checkout after `npm install`).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = new URL('../../', import.meta.url);
const compiled = new URL('dist/src/cli/enamel.js', root);
if (existsSync(compiled)) {
  const { runCli } = await import(compiled.href);
  runCli(process.argv.slice(2));
} else {
  const tsx = createRequire(new URL('package.json', root)).resolve('tsx');
  const source = fileURLToPath(new URL('src/cli/enamel.ts', root));
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(tsx).href, source, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
