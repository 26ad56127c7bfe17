import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { auditEventSchema } from '../../src/audit/event.schema.js';
import { AuditEventError, record } from '../../src/audit/record.js';

const base = {
  practiceId: randomUUID(),
  actor: { kind: 'user', id: randomUUID() },
  action: 'view',
  resource: { type: 'patient', id: randomUUID() },
  patientId: randomUUID(),
  outcome: 'allowed',
  ip: '203.0.113.7',
  requestId: randomUUID(),
} as const;

describe('audit event schema (no PHI can be written)', () => {
  it('accepts ids, enums and counts', () => {
    const ok = auditEventSchema.safeParse({ ...base, details: { count: 3, format: 'csv', target_id: randomUUID() } });
    expect(ok.success, JSON.stringify(ok.error?.issues)).to.equal(true);
  });

  const name = 'Jane Doe';
  const attempts: [string, Record<string, unknown>][] = [
    ['a name in details under a free key', { details: { note: name } }],
    ['a name in a catalogued detail', { details: { format: name } }],
    ['a name as a count', { details: { count: name } }],
    ['a name as the resource id', { resource: { type: 'patient', id: name } }],
    ['a lower-case name as the resource id', { resource: { type: 'patient', id: 'doe' } }],
    ['a name as the patient id', { patientId: name }],
    ['a name as the actor id', { actor: { kind: 'user', id: name } }],
    ['a name as the reason', { reason: name }],
    ['a name as the action', { action: name }],
    ['a name as the request id', { requestId: name }],
    ['an extra column', { patientName: name }],
  ];
  for (const [what, change] of attempts) {
    it(`refuses ${what}, without echoing it`, async () => {
      expect(auditEventSchema.safeParse({ ...base, ...change }).success).to.equal(false);
      let err: unknown;
      // record() refuses before touching the database (no transaction needed to prove it).
      await record(undefined as never, { ...base, ...change } as never).catch((e: unknown) => (err = e));
      expect(err).to.be.instanceOf(AuditEventError);
      expect((err as Error).message).to.not.include('Jane');
      expect((err as Error).message).to.not.include('doe');
    });
  }
});
