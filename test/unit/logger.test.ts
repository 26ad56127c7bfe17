import { expect } from 'chai';
import { createLogger, escapeControl, serializeError } from '../../src/config/logger.js';
import { captureLogs } from '../support/app.js';

describe('logger', () => {
  it('redacts bodies, queries, cookies and authorization headers', () => {
    const { lines, stream } = captureLogs();
    const log = createLogger('info', stream);
    log.info(
      { body: { lastName: 'Doe' }, query: { dob: '1980-01-01' }, req: { headers: { cookie: 'sid=abc', authorization: 'Basic x' } } },
      'probe',
    );
    const text = JSON.stringify(lines);
    expect(text).to.not.include('Doe');
    expect(text).to.not.include('1980-01-01');
    expect(text).to.not.include('sid=abc');
    expect(text).to.not.include('Basic x');
    expect(text).to.include('[redacted]');
  });

  it('escapes control characters so a request cannot forge log lines', () => {
    expect(escapeControl('/a\nFAKE\u001b[31m')).to.equal('/a\\x0aFAKE\\x1b[31m');
    expect(escapeControl('x'.repeat(600)).length).to.be.lessThan(520);
  });

  it('keeps database error messages and details (which may quote values) out of the log', () => {
    const err = Object.assign(new Error('duplicate key value: Key (email)=(jane@example.com)'), {
      name: 'DatabaseError',
      code: '23505',
      constraint: 'patients_email_unique',
      detail: 'Key (email)=(jane@example.com) already exists.',
      routine: '_bt_check_unique',
    });
    const out = JSON.stringify(serializeError(err));
    expect(out).to.not.include('jane@example.com');
    expect(out).to.include('23505');
    expect(out).to.include('patients_email_unique');
  });
});
