#!/usr/bin/env node
import { createKnex } from '../db/knex.js';
import { expectedMigrations, migrateLatest, pendingMigrations } from '../db/migrations.js';

/**
 * The operator's command line. Today: migrations against an external database (for deployments
 * that set MIGRATE_ON_START=false). Later issues add keys, audit and jobs commands here.
 */
const USAGE = `Usage: enamel <command>

Commands:
  migrate           apply pending migrations as the owner role (MIGRATION_DATABASE_URL)
  migrate status    list migrations and whether each is applied
  help              show this text
`;

async function migrate(args: string[]): Promise<number> {
  const url = process.env.MIGRATION_DATABASE_URL;
  if (!url) {
    process.stderr.write('MIGRATION_DATABASE_URL is not set: it must name the owner role that runs migrations.\n');
    return 2;
  }
  const owner = createKnex(url, { poolMax: 1, applicationName: 'enamel-cli' });
  try {
    if (args[0] === 'status') {
      const pending = new Set(await pendingMigrations(owner));
      for (const name of await expectedMigrations()) process.stdout.write(`${pending.has(name) ? 'pending ' : 'applied '} ${name}\n`);
      return 0;
    }
    if (args.length > 0) {
      process.stderr.write(USAGE);
      return 2;
    }
    const applied = await migrateLatest(owner);
    process.stdout.write(applied.length ? `applied ${applied.length} migration(s):\n  ${applied.join('\n  ')}\n` : 'migrations are current\n');
    return 0;
  } finally {
    await owner.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'migrate':
      return migrate(rest);
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`Unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`enamel: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
