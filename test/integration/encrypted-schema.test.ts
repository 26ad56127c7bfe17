import { expect } from 'chai';
import '../../src/crypto/key-management.js';
import { encryptedTables, indexColumns } from '../../src/crypto/encrypted-columns.js';
import { useTestDatabase } from '../support/db.js';

/** bytea columns that are not encrypted field values, and why. */
const NOT_FIELDS = new Set([
  'data_keys.wrapped', // the data key wrapped by the KEK (its own envelope)
  'operators.totp_wrapped', // an operator's TOTP secret wrapped by the key provider (platform context)
  'audit_events.prev_hash', // hash chain (SHA-256), not data
  'audit_events.hash',
  'audit_checkpoints.head_hash', // signed chain head
  'audit_checkpoints.signature', // Ed25519 signature
  'practice_settings.logo_png', // the practice's logo: public branding, shown before sign-in
]);

describe('encrypted schema', () => {
  const t = useTestDatabase();

  it('every bytea column of the migrated schema is a declared encrypted column or its blind index', async () => {
    const r = await t.current.owner.raw<{ rows: { table_name: string; column_name: string }[] }>(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type = 'bytea' ORDER BY 1, 2`,
    );
    const declared = new Set<string>();
    for (const def of encryptedTables()) {
      for (const [column, spec] of Object.entries(def.columns)) {
        declared.add(`${def.table}.${column}`);
        for (const [indexColumn] of indexColumns(column, spec)) declared.add(`${def.table}.${indexColumn}`);
      }
    }
    const undeclared = r.rows.map((c) => `${c.table_name}.${c.column_name}`).filter((c) => !declared.has(c) && !NOT_FIELDS.has(c));
    expect(undeclared, 'bytea columns no encryptedColumns() declaration covers (add it to src/queries/encrypted-tables.ts)').to.deep.equal([]);
    expect(r.rows.length).to.be.greaterThan(0);
  });
});
