import { expect } from 'chai';
import { withPractice } from '../../src/db/tenant.js';
import { createTestDatabase, destroyTestDatabase } from '../support/db.js';
import { buildPractice } from '../support/factories.js';
import { collectLogs, collectMessages, forgetPhi, rememberPhi, scanForPhi } from '../support/phi-scan.js';

describe('the PHI scan that runs after every test file', () => {
  it('finds a remembered patient value in an audit row, a log line or an outgoing message, and names only where', async () => {
    const t = await createTestDatabase();
    const marker = 'Zebulonscanmarker';
    try {
      rememberPhi(marker);
      const p = await buildPractice(t.owner, { slug: 'phi-scan' });
      expect(await scanForPhi(t.owner)).to.deep.equal([]);
      await withPractice(t.owner, p.id, { kind: 'system', id: 'test' }, (trx) =>
        trx('audit_events').insert({ practice_id: p.id, actor_type: 'system', actor_id: 'test', action: 'view', resource_type: 'patient', resource_id: marker, outcome: 'allowed' }),
      );
      collectLogs([{ msg: 'request', path: `/p/phi-scan/patients/${marker}` }]);
      collectMessages([{ subject: 'Security alert at PHI Scan Dental', text: `Something about ${marker}` }]);
      const problems = await scanForPhi(t.owner);
      expect(problems).to.include('audit_events.resource_id (event 1)');
      expect(problems.some((x) => x.startsWith('log field "path"'))).to.equal(true);
      expect(problems).to.include('an outgoing message (Security alert at PHI Scan Dental)');
      expect(problems.join(' ')).to.not.include(marker);
    } finally {
      forgetPhi(marker);
      await destroyTestDatabase(t);
    }
  });
});
