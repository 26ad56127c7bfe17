import { spawn } from 'node:child_process';
import { PassThrough, type Readable, type Writable } from 'node:stream';

/**
 * The PostgreSQL client tools, where they exist (docs/BACKUP.md): `pg_dump` custom format is used
 * when the installed client is at least the server's major version (pg_dump refuses a newer
 * server). Connection details go to the tools in the environment (PGHOST, PGPASSWORD, …), never on
 * the command line, where every local user could read the password.
 */

/** The installed client's major version, or undefined when `tool` is not installed. */
export function clientMajor(tool: 'pg_dump' | 'pg_restore' = 'pg_dump'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const child = spawn(tool, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => {
      const m = /\(PostgreSQL\) (\d+)/.exec(out);
      resolve(code === 0 && m ? Number(m[1]) : undefined);
    });
  });
}

/** libpq environment for a postgres:// URL (the password never on a command line). */
export function libpqEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  const env: NodeJS.ProcessEnv = {
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
    PGAPPNAME: 'enamel-backup',
  };
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const sslmode = u.searchParams.get('sslmode');
  if (sslmode) env.PGSSLMODE = sslmode === 'no-verify' ? 'require' : sslmode;
  return env;
}

/** ENAMEL_DEBUG_PG_TOOLS=1 shows the tools' messages on the terminal (they may quote data: never in production). */
const DEBUG = Boolean(process.env.ENAMEL_DEBUG_PG_TOOLS);

export class PgToolError extends Error {
  constructor(tool: string, code: number | null) {
    super(`${tool} failed (exit ${code ?? 'signal'}); its messages were not kept (they may quote data)`);
    this.name = 'PgToolError';
  }
}

/** `pg_dump --format=custom` of the database at `url`, reading the exported snapshot `snapshot`. */
export function pgDump(url: string, snapshot: string, excludeData: readonly string[]): Readable {
  const args = ['--format=custom', '--compress=0', `--snapshot=${snapshot}`, '--no-sync', ...excludeData.map((t) => `--exclude-table-data=public.${t}`)];
  const child = spawn('pg_dump', args, { env: { PATH: process.env.PATH, ...libpqEnv(url) }, stdio: ['ignore', 'pipe', DEBUG ? 'inherit' : 'ignore'] });
  const out = new PassThrough();
  child.stdout.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(e));
  child.on('close', (code) => (code === 0 ? out.end() : out.destroy(new PgToolError('pg_dump', code))));
  return out;
}

/** `pg_restore` into the (empty) database at `url`, in one transaction, stopping at the first error. */
export function pgRestore(url: string): { stdin: Writable; done: Promise<void> } {
  const child = spawn('pg_restore', ['--exit-on-error', '--single-transaction', '--no-owner', `--dbname=${decodeURIComponent(new URL(url).pathname.slice(1))}`], { env: { PATH: process.env.PATH, ...libpqEnv(url) }, stdio: ['pipe', 'ignore', DEBUG ? 'inherit' : 'ignore'] });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new PgToolError('pg_restore', code))));
  });
  return { stdin: child.stdin, done };
}
