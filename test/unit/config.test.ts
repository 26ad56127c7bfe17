import { expect } from 'chai';
import { ConfigError, configWarnings, loadConfig } from '../../src/config/env.js';

const SAFE_PRODUCTION = {
  NODE_ENV: 'production',
  DATABASE_URL: 'postgres://enamel_app:secret@db.internal:5432/enamel?sslmode=verify-full',
  MIGRATION_DATABASE_URL: 'postgres://enamel_owner:secret@db.internal:5432/enamel?sslmode=verify-full',
  PUBLIC_URL: 'https://enamel.practice.example',
  TRUST_PROXY: '10.0.0.0/8',
  SESSION_SECRET: 'x'.repeat(48),
  SECURITY_CONTACT: 'security@practice.example',
  KEK_FILE: '/run/secrets/enamel-kek.json',
};

function problemsOf(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).to.be.instanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected loadConfig to refuse');
}

describe('configuration', () => {
  it('has working defaults for local evaluation (embedded database, port 3000, demo seed)', () => {
    const c = loadConfig({});
    expect(c.port).to.equal(3000);
    expect(c.database.kind).to.equal('embedded');
    expect(c.seedDemo).to.equal(true);
    expect(c.trustProxy).to.equal(false);
    expect(c.publicUrl.toString()).to.equal('http://localhost:3000/');
    expect(c.dataDir).to.match(/\.data$/);
  });

  it('accepts a safe production configuration', () => {
    const c = loadConfig(SAFE_PRODUCTION);
    expect(c.isProduction).to.equal(true);
    expect(c.seedDemo).to.equal(false);
    expect(c.trustProxy).to.deep.equal(['10.0.0.0/8']);
    expect(c.securityContact).to.equal('mailto:security@practice.example');
  });

  const unsafe: [string, NodeJS.ProcessEnv, string][] = [
    ['the embedded database', { DATABASE_URL: undefined, MIGRATION_DATABASE_URL: undefined }, 'DATABASE_URL'],
    ['no migration role', { MIGRATION_DATABASE_URL: undefined }, 'MIGRATION_DATABASE_URL'],
    ['the runtime URL as the migration URL', { MIGRATION_DATABASE_URL: SAFE_PRODUCTION.DATABASE_URL }, 'MIGRATION_DATABASE_URL'],
    ['an http public URL', { PUBLIC_URL: 'http://enamel.practice.example' }, 'PUBLIC_URL'],
    ['no public URL', { PUBLIC_URL: undefined }, 'PUBLIC_URL'],
    ['no TLS and no trusted proxy', { TRUST_PROXY: undefined }, 'TRUST_PROXY'],
    ['no session secret', { SESSION_SECRET: undefined }, 'SESSION_SECRET'],
    ['a short session secret', { SESSION_SECRET: 'short' }, 'SESSION_SECRET'],
    ['no security contact', { SECURITY_CONTACT: undefined }, 'SECURITY_CONTACT'],
    ['the demo seed', { SEED_DEMO: 'true' }, 'SEED_DEMO'],
    ['generated evaluation keys (no KEK configured)', { KEK_FILE: undefined }, 'KEK_FILE'],
    ['a remote database without TLS', { DATABASE_URL: 'postgres://enamel_app:secret@db.internal:5432/enamel' }, 'DATABASE_URL'],
    ['a remote database with sslmode=disable', { DATABASE_URL: 'postgres://enamel_app:secret@db.internal/enamel?sslmode=disable' }, 'DATABASE_URL'],
    ['a remote database with sslmode=prefer (falls back to clear text)', { DATABASE_URL: 'postgres://enamel_app:secret@10.0.0.5/enamel?sslmode=prefer' }, 'DATABASE_URL'],
    ['a remote migration database without TLS', { MIGRATION_DATABASE_URL: 'postgres://enamel_owner:secret@db.internal/enamel' }, 'MIGRATION_DATABASE_URL'],
    ['plaintext SMTP', { MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://user:pw@mail.example:25' }, 'SMTP_URL'],
    ['SMTP with STARTTLS optional', { MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtp://user:pw@mail.example:587?requireTLS=false' }, 'SMTP_URL'],
    ['SMTPS without certificate checks', { MAIL_TRANSPORT: 'smtp', SMTP_URL: 'smtps://user:pw@mail.example:465?tls.rejectUnauthorized=false' }, 'SMTP_URL'],
  ];
  for (const [what, change, setting] of unsafe) {
    it(`refuses production with ${what}, naming ${setting}`, () => {
      const message = problemsOf({ ...SAFE_PRODUCTION, ...change });
      expect(message).to.include('Refusing to start with NODE_ENV=production');
      expect(message).to.include(`${setting}:`);
    });
  }

  it('accepts encrypted transports in production: smtps, STARTTLS required, TLS to a remote database, or a database on this host', () => {
    for (const url of ['smtps://user:pw@mail.example:465', 'smtp://user:pw@mail.example:587?requireTLS=true']) {
      expect(loadConfig({ ...SAFE_PRODUCTION, MAIL_TRANSPORT: 'smtp', SMTP_URL: url }).mail.transport, url).to.equal('smtp');
    }
    for (const db of ['postgres://a:b@db.internal/e?sslmode=require', 'postgres://a:b@10.1.2.3/e?sslmode=no-verify', 'postgres://a:b@127.0.0.1:5432/e', 'postgres://a:b@localhost/e', 'postgres://a:b@[::1]/e', 'postgres://a:b@/e?host=%2Fvar%2Frun%2Fpostgresql']) {
      expect(loadConfig({ ...SAFE_PRODUCTION, DATABASE_URL: db, MIGRATION_DATABASE_URL: `${db}${db.includes('?') ? '&' : '?'}application_name=migrate` }).database.kind, db).to.equal('external');
    }
  });

  it('warns (without refusing) about a database connection that does not check the certificate', () => {
    const c = loadConfig({ ...SAFE_PRODUCTION, DATABASE_URL: 'postgres://a:b@db/e?sslmode=no-verify' });
    expect(configWarnings(c)).to.have.length(1);
    expect(configWarnings(c)[0]).to.include('DATABASE_URL: sslmode=no-verify');
    expect(configWarnings(loadConfig(SAFE_PRODUCTION))).to.deep.equal([]);
  });

  it('accepts built-in TLS instead of a proxy in production', () => {
    const c = loadConfig({ ...SAFE_PRODUCTION, TRUST_PROXY: undefined, TLS_CERT_FILE: '/certs/c.pem', TLS_KEY_FILE: '/certs/k.pem' });
    expect(c.tls).to.deep.equal({ certFile: '/certs/c.pem', keyFile: '/certs/k.pem' });
  });

  it('refuses TRUST_PROXY=true (every client could forge its address) in any environment', () => {
    expect(problemsOf({ TRUST_PROXY: 'true' })).to.include('TRUST_PROXY');
  });

  it('takes KEKs from ENAMEL_KEKS instead of a file, but not both', () => {
    const c = loadConfig({ ...SAFE_PRODUCTION, KEK_FILE: undefined, ENAMEL_KEKS: 'k1:abc' });
    expect(c.keys).to.deep.equal({ kind: 'env', list: 'k1:abc', active: undefined });
    expect(problemsOf({ KEK_FILE: '/k.json', ENAMEL_KEKS: 'k1:abc' })).to.include('KEK_FILE and ENAMEL_KEKS');
  });

  it('refuses half a TLS configuration', () => {
    expect(problemsOf({ TLS_CERT_FILE: '/certs/c.pem' })).to.include('TLS_CERT_FILE and TLS_KEY_FILE');
  });

  it('names each malformed setting', () => {
    const message = problemsOf({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    expect(message).to.include('PORT');
    expect(message).to.include('DATABASE_URL');
    expect(message).to.include('LOG_LEVEL');
  });
});
