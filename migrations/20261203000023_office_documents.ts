import type { Knex } from 'knex';

/*
 * The office's paperwork apart from clinical images:
 * - a document kind for photo ID (patients upload it through an uploads link);
 * - the `documents.office` permission (src/permissions.ts) for the roles that check coverage and
 *   identity but do not read radiographs. Practices keep their edited roles; this adds the
 *   permission to the roles still under their default keys (front desk, billing, office manager),
 *   as a new practice would get it. A role an owner edited keeps its other choices.
 */
/** Runs `sql` once in each practice's context (roles and documents are tenant tables under forced RLS). */
async function eachPractice(knex: Knex, sql: string): Promise<void> {
  await knex.raw(`
    DO $$
    DECLARE p uuid;
    BEGIN
      FOR p IN SELECT id FROM practices LOOP
        PERFORM set_config('app.practice_id', p::text, true);
        EXECUTE $sql$ ${sql} $sql$;
      END LOOP;
      PERFORM set_config('app.practice_id', '', true);
    END $$;
  `);
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE patient_documents DROP CONSTRAINT patient_documents_kind_check;
    ALTER TABLE patient_documents ADD CONSTRAINT patient_documents_kind_check
      CHECK (kind IN ('radiograph', 'intraoral_photo', 'insurance_card', 'photo_id', 'consent', 'other'));
  `);
  await eachPractice(knex, `UPDATE roles SET permissions = array_append(permissions, 'documents.office')
    WHERE key IN ('front_desk', 'billing', 'office_manager') AND NOT ('documents.office' = ANY (permissions))`);
}

export async function down(knex: Knex): Promise<void> {
  await eachPractice(knex, `UPDATE roles SET permissions = array_remove(permissions, 'documents.office')`);
  await eachPractice(knex, `UPDATE patient_documents SET kind = 'other' WHERE kind = 'photo_id'`);
  await knex.raw(`
    ALTER TABLE patient_documents DROP CONSTRAINT patient_documents_kind_check;
    ALTER TABLE patient_documents ADD CONSTRAINT patient_documents_kind_check
      CHECK (kind IN ('radiograph', 'intraoral_photo', 'insurance_card', 'consent', 'other'));
  `);
}
