import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Where the project's files live, whether running from TypeScript sources (tsx) or from the
 * compiled `dist/` (production image). Views, static files and package.json stay at the root;
 * compiled migrations sit under dist/.
 */
const here = path.dirname(fileURLToPath(import.meta.url));

function findRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'views'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('Cannot find the Enamel project root (package.json beside views/)');
    dir = parent;
  }
}

export const isCompiled = import.meta.url.endsWith('.js');
export const projectRoot = findRoot(here);
/** Root of the code tree: the project root from sources, dist/ when compiled. */
export const codeRoot = isCompiled ? path.join(projectRoot, 'dist') : projectRoot;
export const viewsDir = path.join(projectRoot, 'views');
export const publicDir = path.join(projectRoot, 'public');
export const migrationsDir = path.join(codeRoot, 'migrations');
export const codeExtension = isCompiled ? '.js' : '.ts';
