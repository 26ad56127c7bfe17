import type { Knex } from 'knex';

/*
 * Backups and their restore drills (issue 17, docs/BACKUP.md). A drill restores the latest backup
 * into a scratch database, checks it, and is recorded here at installation level: when, which
 * backup, its age when restored (the recovery point), how long the restore and checks took (the
 * recovery time), what was restored, and — when it failed — which step failed (a fixed token and a
 * part or table name, never data).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE restore_drills (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      practice_id uuid NOT NULL REFERENCES practices(id) CHECK (practice_id = '00000000-0000-0000-0000-000000000000'),
      ran_at timestamptz NOT NULL,
      backup_id uuid,
      backup_created_at timestamptz,
      outcome text NOT NULL CHECK (outcome IN ('passed', 'failed')),
      rpo_seconds integer CHECK (rpo_seconds >= 0),
      rto_seconds integer CHECK (rto_seconds >= 0),
      tables integer NOT NULL DEFAULT 0 CHECK (tables >= 0),
      rows bigint NOT NULL DEFAULT 0 CHECK (rows >= 0),
      files integer NOT NULL DEFAULT 0 CHECK (files >= 0),
      chains integer NOT NULL DEFAULT 0 CHECK (chains >= 0),
      failure text CHECK (failure ~ '^[a-z_]{1,40}( [A-Za-z0-9_/.:-]{1,80}){0,1}$'),
      CHECK ((outcome = 'failed') = (failure IS NOT NULL))
    );
    CREATE INDEX restore_drills_ran_at ON restore_drills (practice_id, ran_at DESC);
    SELECT enamel_tenant_table('restore_drills');
    GRANT SELECT, INSERT ON restore_drills TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE restore_drills');
}
