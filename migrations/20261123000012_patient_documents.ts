import type { Knex } from 'knex';

/*
 * Patient documents and images. The bytes live encrypted in the file store (stored_files); this row
 * holds ids, the kind, the type detected from the bytes, the image size, and an encrypted title.
 * The client's file name is never kept (it can carry a patient's name). Deleting marks the row
 * (the audit trail stays) and removes the blobs after commit.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE patient_documents (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('radiograph', 'intraoral_photo', 'insurance_card', 'consent', 'other')),
      title bytea,
      content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'application/pdf')),
      file_id uuid,
      thumb_file_id uuid,
      width integer CHECK (width > 0),
      height integer CHECK (height > 0),
      byte_size integer NOT NULL CHECK (byte_size > 0),
      uploaded_by uuid NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      deleted_at timestamptz,
      deleted_by uuid,
      CHECK ((deleted_at IS NULL) = (file_id IS NOT NULL)),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id)
    );
    CREATE INDEX patient_documents_patient ON patient_documents (practice_id, patient_id, created_at DESC);
    SELECT enamel_tenant_table('patient_documents');
    GRANT SELECT, INSERT ON patient_documents TO enamel_app;
    GRANT UPDATE (deleted_at, deleted_by, file_id, thumb_file_id) ON patient_documents TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE patient_documents');
}
