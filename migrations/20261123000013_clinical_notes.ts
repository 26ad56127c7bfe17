import type { Knex } from 'knex';

/*
 * Clinical notes: written by clinical roles, encrypted, signed by the author and then locked — a
 * trigger refuses any change to a signed note, whoever asks. Corrections are amendments, kept
 * beside the untouched original (HIPAA integrity and amendment rights), insert-only. A covering
 * provider from another location is recorded with both locations.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE clinical_notes (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      patient_id uuid NOT NULL,
      author_id uuid NOT NULL,
      location_id uuid NOT NULL,
      author_location_id uuid,
      body bytea NOT NULL,
      status text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'signed')),
      signed_at timestamptz,
      content_hash text CHECK (content_hash ~ '^[0-9a-f]{64}$'),
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK ((status = 'signed') = (signed_at IS NOT NULL AND content_hash IS NOT NULL)),
      UNIQUE (practice_id, id),
      FOREIGN KEY (practice_id, patient_id) REFERENCES patients (practice_id, id),
      FOREIGN KEY (practice_id, author_id) REFERENCES users (practice_id, id),
      FOREIGN KEY (practice_id, location_id) REFERENCES locations (practice_id, id),
      FOREIGN KEY (practice_id, author_location_id) REFERENCES locations (practice_id, id)
    );
    CREATE INDEX clinical_notes_patient ON clinical_notes (practice_id, patient_id, created_at DESC);
    SELECT enamel_tenant_table('clinical_notes');

    CREATE FUNCTION enamel_signed_note_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'clinical notes are never deleted' USING ERRCODE = '42501';
      END IF;
      IF OLD.status = 'signed' THEN
        RAISE EXCEPTION 'a signed clinical note cannot be changed; add an amendment' USING ERRCODE = '42501';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER clinical_notes_signed_guard BEFORE UPDATE OR DELETE ON clinical_notes
      FOR EACH ROW EXECUTE FUNCTION enamel_signed_note_guard();
    GRANT SELECT, INSERT ON clinical_notes TO enamel_app;
    GRANT UPDATE (body, status, signed_at, content_hash, updated_at) ON clinical_notes TO enamel_app;

    CREATE TABLE clinical_note_amendments (
      id uuid PRIMARY KEY,
      practice_id uuid NOT NULL,
      note_id uuid NOT NULL,
      author_id uuid NOT NULL,
      body bytea NOT NULL,
      content_hash text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
      created_at timestamptz NOT NULL DEFAULT now(),
      FOREIGN KEY (practice_id, note_id) REFERENCES clinical_notes (practice_id, id),
      FOREIGN KEY (practice_id, author_id) REFERENCES users (practice_id, id)
    );
    CREATE INDEX clinical_note_amendments_note ON clinical_note_amendments (practice_id, note_id, created_at);
    SELECT enamel_tenant_table('clinical_note_amendments');
    GRANT SELECT, INSERT ON clinical_note_amendments TO enamel_app;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TABLE clinical_note_amendments; DROP TABLE clinical_notes; DROP FUNCTION enamel_signed_note_guard();');
}
