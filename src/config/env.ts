import path from 'node:path';
import { z } from 'zod';

/**
 * Configuration, parsed once from the environment by zod. Every setting has a documented default
 * (README "Configuration"); production refuses to start on unsafe values (see productionProblems).
 */

const booleanString = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const postgresUrl = z
  .string()
  .trim()
  .refine((v) => /^postgres(ql)?:\/\//.test(v), 'must be a postgres:// or postgresql:// URL');

/**
 * TRUST_PROXY: which peers may set X-Forwarded-For / -Proto. "false" (default) trusts none;
 * a hop count ("1") or a comma-separated list of addresses/subnets/names Express understands
 * ("loopback", "10.0.0.0/8", "uniquelocal"). "true" (trust everyone) is refused: any client could
 * then forge its IP address and the HTTPS flag.
 */
const trustProxy = z
  .string()
  .trim()
  .default('false')
  .transform((v, ctx): false | number | string[] => {
    if (v === '' || v === 'false' || v === '0') return false;
    if (v === 'true') {
      ctx.addIssue({
        code: 'custom',
        message:
          'must name the reverse proxy (a hop count like 1, or addresses such as loopback or 10.0.0.0/8); "true" would trust every client',
      });
      return z.NEVER;
    }
    if (/^\d+$/.test(v)) return Number(v);
    const parts = v.split(',').map((p) => p.trim()).filter(Boolean);
    const ok = parts.every((p) => /^(loopback|linklocal|uniquelocal|[0-9a-fA-F.:]+(\/\d{1,3})?)$/.test(p));
    if (!ok) {
      ctx.addIssue({ code: 'custom', message: 'must be false, a hop count, or a list of addresses/subnets' });
      return z.NEVER;
    }
    return parts;
  });

const securityContact = z
  .string()
  .trim()
  .transform((v) => (/^[^@\s:]+@[^@\s]+$/.test(v) ? `mailto:${v}` : v))
  .refine((v) => /^(mailto:[^@\s]+@[^@\s]+|https:\/\/\S+|tel:\+?[0-9-]+)$/.test(v), 'must be an email address, mailto:, https:// or tel: URI');

export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  DATABASE_URL: postgresUrl.optional(),
  MIGRATION_DATABASE_URL: postgresUrl.optional(),
  MIGRATE_ON_START: booleanString.default(true),
  DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
  DATA_DIR: z.string().trim().min(1).default('./.data'),
  EMBEDDED_PG_PORT: z.coerce.number().int().min(1024).max(65535).default(54329),
  SEED_DEMO: booleanString.optional(),
  TRUST_PROXY: trustProxy,
  TLS_CERT_FILE: optionalString,
  TLS_KEY_FILE: optionalString,
  SESSION_SECRET: optionalString,
  KEK_FILE: optionalString,
  ENAMEL_KEKS: optionalString,
  ENAMEL_KEK_ACTIVE: optionalString,
  FILES_DIR: optionalString,
  KEYS_DIR: optionalString,
  SECURITY_CONTACT: securityContact.optional(),
  SUBPROCESSORS_PATH: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^\/[a-z0-9][a-z0-9/-]{0,79}$/, 'a path such as /subprocessors (lower-case letters, digits, - and /)').refine((v) => !/^\/(p|l|portal|operator|healthz|readyz|public|\.well-known)(\/|$)/.test(v), 'a path the application does not already use').optional()),
  SECURITY_TXT_EXPIRES: z.iso.datetime({ offset: true }).or(z.iso.date()).optional(),
  MAIL_TRANSPORT: z.enum(['log', 'smtp']).default('log'),
  SMTP_URL: z.preprocess((v) => (v === '' ? undefined : v), z.url({ protocol: /^smtps?$/ }).optional()),
  MAIL_FROM: optionalString,
  SMS_TRANSPORT: z.enum(['log', 'http']).default('log'),
  SMS_API_URL: z.url({ protocol: /^https?$/ }).default('https://api.twilio.com'),
  SMS_ACCOUNT_SID: z.string().regex(/^[A-Za-z0-9]{8,64}$/, 'letters and digits').optional(),
  SMS_AUTH_TOKEN: z.string().min(16, 'at least 16 characters').max(200).optional(),
  SMS_FROM: z.string().regex(/^\+[1-9][0-9]{6,14}$/, 'an E.164 number such as +15551234567').optional(),
  BACKUP_DIR: optionalString,
  BACKUP_METHOD: z.enum(['auto', 'snapshot', 'pg_dump']).default('auto'),
  BACKUP_DATABASE_URL: postgresUrl.optional(),
  BACKUP_KEEP: z.coerce.number().int().min(1).max(1000).default(14),
  BACKUP_MAX_AGE_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  RESTORE_DRILL_SERVER_URL: postgresUrl.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(120_000).default(10_000),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  host: string;
  port: number;
  publicUrl: URL;
  database:
    | { kind: 'embedded'; port: number; /** EMBEDDED_PG_PORT was set: a taken port is an error, not a reason to pick another. */ portExplicit: boolean }
    | { kind: 'external'; runtimeUrl: string; migrationUrl: string | undefined };
  migrateOnStart: boolean;
  poolMax: number;
  dataDir: string;
  seedDemo: boolean;
  trustProxy: false | number | string[];
  tls: { certFile: string; keyFile: string } | undefined;
  sessionSecret: string | undefined;
  /** Where the key-encryption keys come from (src/crypto/README.md). */
  keys: { kind: 'file'; file: string } | { kind: 'env'; list: string; active: string | undefined } | { kind: 'evaluation' };
  /** Encrypted file blobs (local FileStore). */
  filesDir: string;
  /** Per-practice key material of the local key provider (shredding deletes it). */
  keysDir: string;
  securityContact: string;
  /** Where the installation's sub-processor list is public (unset: not public). */
  subprocessorsPath: string | undefined;
  securityTxtExpires: Date;
  logLevel: Env['LOG_LEVEL'];
  shutdownTimeoutMs: number;
  /**
   * Backups (docs/BACKUP.md): where they go, how many and how old are kept, and — for an external
   * database — the role that reads every practice's rows (BYPASSRLS) and the server role that may
   * create and drop the restore drill's scratch database. The embedded database uses its superuser.
   */
  backup: { dir: string; method: 'auto' | 'snapshot' | 'pg_dump'; keep: number; maxAgeDays: number; databaseUrl: string | undefined; drillServerUrl: string | undefined };
  /** Outgoing email: 'log' writes each message to DATA_DIR/mail (development); 'smtp' sends it. */
  mail: { transport: 'log'; dir: string; from: string } | { transport: 'smtp'; url: string; from: string };
  /**
   * Text messages: 'log' writes each to DATA_DIR/mail like email; 'http' sends through a
   * Twilio-compatible API. The auth token also checks the signature of inbound webhooks (STOP/HELP);
   * without one every inbound webhook is refused.
   */
  sms: { transport: 'log' | 'http'; apiUrl: string; accountSid: string | undefined; authToken: string | undefined; from: string | undefined };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DEV_SECURITY_CONTACT = 'mailto:security@example.invalid';
/** security.txt must expire; by default we promise the current contact for 180 days from start-up. */
const DEFAULT_SECURITY_TXT_DAYS = 180;

/** Parses the environment. Throws a ConfigError naming each invalid setting; never returns a half-valid config. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env, now: Date = new Date()): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(environment)'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  if (Boolean(e.TLS_CERT_FILE) !== Boolean(e.TLS_KEY_FILE)) {
    throw new ConfigError('Invalid configuration:\n  TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  }
  if (e.KEK_FILE && e.ENAMEL_KEKS) {
    throw new ConfigError('Invalid configuration:\n  KEK_FILE and ENAMEL_KEKS: set one of them, not both');
  }
  if (e.MAIL_TRANSPORT === 'smtp' && !e.SMTP_URL) {
    throw new ConfigError('Invalid configuration:\n  SMTP_URL: set it (smtps://user:password@host:465) when MAIL_TRANSPORT=smtp');
  }
  if (e.SMS_TRANSPORT === 'http' && !(e.SMS_ACCOUNT_SID && e.SMS_AUTH_TOKEN && e.SMS_FROM)) {
    throw new ConfigError('Invalid configuration:\n  SMS_ACCOUNT_SID, SMS_AUTH_TOKEN, SMS_FROM: set all three when SMS_TRANSPORT=http');
  }
  const tls = e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE } : undefined;
  const defaultPublicUrl = `${tls ? 'https' : 'http'}://localhost:${e.PORT}`;
  const config: Config = {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    host: e.HOST,
    port: e.PORT,
    publicUrl: new URL(e.PUBLIC_URL ?? defaultPublicUrl),
    database: e.DATABASE_URL
      ? { kind: 'external', runtimeUrl: e.DATABASE_URL, migrationUrl: e.MIGRATION_DATABASE_URL }
      : { kind: 'embedded', port: e.EMBEDDED_PG_PORT, portExplicit: source.EMBEDDED_PG_PORT !== undefined && source.EMBEDDED_PG_PORT !== '' },
    migrateOnStart: e.MIGRATE_ON_START,
    poolMax: e.DB_POOL_MAX,
    dataDir: path.resolve(e.DATA_DIR),
    // NOTE: the demo practice is seeded by default only into the embedded evaluation database.
    seedDemo: e.SEED_DEMO ?? !e.DATABASE_URL,
    trustProxy: e.TRUST_PROXY,
    tls,
    sessionSecret: e.SESSION_SECRET,
    keys: e.KEK_FILE
      ? { kind: 'file', file: path.resolve(e.KEK_FILE) }
      : e.ENAMEL_KEKS
        ? { kind: 'env', list: e.ENAMEL_KEKS, active: e.ENAMEL_KEK_ACTIVE }
        : { kind: 'evaluation' },
    filesDir: path.resolve(e.FILES_DIR ?? path.join(e.DATA_DIR, 'files')),
    keysDir: path.resolve(e.KEYS_DIR ?? path.join(e.DATA_DIR, 'keys', 'practices')),
    securityContact: e.SECURITY_CONTACT ?? DEV_SECURITY_CONTACT,
    subprocessorsPath: e.SUBPROCESSORS_PATH,
    securityTxtExpires: e.SECURITY_TXT_EXPIRES
      ? new Date(e.SECURITY_TXT_EXPIRES)
      : new Date(now.getTime() + DEFAULT_SECURITY_TXT_DAYS * 86_400_000),
    logLevel: e.LOG_LEVEL,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    backup: { dir: path.resolve(e.BACKUP_DIR ?? path.join(e.DATA_DIR, 'backups')), method: e.BACKUP_METHOD, keep: e.BACKUP_KEEP, maxAgeDays: e.BACKUP_MAX_AGE_DAYS, databaseUrl: e.BACKUP_DATABASE_URL, drillServerUrl: e.RESTORE_DRILL_SERVER_URL },
    mail:
      e.MAIL_TRANSPORT === 'smtp'
        ? { transport: 'smtp', url: e.SMTP_URL!, from: e.MAIL_FROM ?? `Enamel <no-reply@${new URL(e.PUBLIC_URL ?? defaultPublicUrl).hostname}>` }
        : { transport: 'log', dir: path.resolve(e.DATA_DIR, 'mail'), from: e.MAIL_FROM ?? 'Enamel <no-reply@localhost>' },
    sms: { transport: e.SMS_TRANSPORT, apiUrl: e.SMS_API_URL, accountSid: e.SMS_ACCOUNT_SID, authToken: e.SMS_AUTH_TOKEN, from: e.SMS_FROM },
  };
  if (config.isProduction) {
    const problems = productionProblems(config, e);
    if (problems.length > 0) {
      throw new ConfigError(
        `Refusing to start with NODE_ENV=production on unsafe settings:\n${problems.map((p) => `  - ${p}`).join('\n')}\n` +
          'See README "Production deployment".',
      );
    }
  }
  return config;
}

/**
 * SECURITY: the production gate. Each entry names the one setting to fix, so an operator is never
 * left guessing. A subsystem with a production requirement (keys, sessions, mail, TLS) adds its check here.
 */
export function productionProblems(config: Config, e: Env): string[] {
  const problems: string[] = [];
  if (config.database.kind === 'embedded') {
    problems.push('DATABASE_URL: set it to your PostgreSQL server; the embedded database is for evaluation only');
  } else if (config.migrateOnStart && !config.database.migrationUrl) {
    problems.push(
      'MIGRATION_DATABASE_URL: set it to the owner role that runs migrations (or set MIGRATE_ON_START=false and run `enamel migrate` yourself); the runtime role must not own the schema',
    );
  } else if (config.database.kind === 'external' && config.database.migrationUrl === config.database.runtimeUrl) {
    problems.push('MIGRATION_DATABASE_URL: must use the owner role, not the same role and URL as DATABASE_URL');
  }
  if (config.publicUrl.protocol !== 'https:' || !e.PUBLIC_URL) {
    problems.push('PUBLIC_URL: set it to the https:// address users open (e.g. https://enamel.example-dental.com)');
  }
  if (!config.tls && config.trustProxy === false) {
    problems.push('TRUST_PROXY: set it to your TLS reverse proxy (e.g. 1 or 10.0.0.0/8), or set TLS_CERT_FILE and TLS_KEY_FILE to serve HTTPS directly');
  }
  if (!config.sessionSecret || config.sessionSecret.length < 32) {
    problems.push('SESSION_SECRET: set it to a random value of at least 32 characters (e.g. `openssl rand -base64 48`)');
  }
  if (config.keys.kind === 'evaluation') {
    problems.push('KEK_FILE: set it (or ENAMEL_KEKS) to your key-encryption keys; generated evaluation keys are not for production');
  }
  if (!e.SECURITY_CONTACT) {
    problems.push('SECURITY_CONTACT: set the address that receives vulnerability reports (published in /.well-known/security.txt)');
  }
  if (config.sms.transport === 'http' && !config.sms.apiUrl.startsWith('https://')) {
    problems.push('SMS_API_URL: must be an https:// address in production');
  }
  if (config.seedDemo) {
    problems.push('SEED_DEMO: must be false in production; the demo practice holds fake data');
  }
  // SECURITY: credentials and PHI never cross a network in clear text (ASVS 12.3.1, 12.3.3).
  if (config.mail.transport === 'smtp' && !smtpIsEncrypted(config.mail.url)) {
    problems.push('SMTP_URL: plaintext SMTP would send mail server passwords and links in clear; use smtps://…:465, or smtp://…:587?requireTLS=true (STARTTLS required), with certificate checks on');
  }
  if (config.database.kind === 'external') {
    if (!databaseUrlIsEncrypted(config.database.runtimeUrl)) {
      problems.push('DATABASE_URL: the database is on another host; add ?sslmode=verify-full (or require; no-verify only on a private network you control) so the connection is encrypted');
    }
    if (config.database.migrationUrl && !databaseUrlIsEncrypted(config.database.migrationUrl)) {
      problems.push('MIGRATION_DATABASE_URL: the database is on another host; add ?sslmode=verify-full (or require) so the connection is encrypted');
    }
  }
  return problems;
}

/** Settings production accepts but an operator should know about (logged at start). */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];
  if (config.database.kind === 'external') {
    for (const [name, url] of [['DATABASE_URL', config.database.runtimeUrl], ['MIGRATION_DATABASE_URL', config.database.migrationUrl]] as const) {
      if (url && /[?&]sslmode=no-verify(&|$)/.test(url)) warnings.push(`${name}: sslmode=no-verify encrypts but does not check the server's certificate; use verify-full with the database's CA when it has one`);
    }
  }
  return warnings;
}

/** Whether an SMTP URL encrypts: smtps://, or smtp:// with STARTTLS required; certificate checks not switched off. */
export function smtpIsEncrypted(url: string): boolean {
  const u = new URL(url);
  if (u.searchParams.get('tls.rejectUnauthorized') === 'false' || u.searchParams.get('ignoreTLS') === 'true') return false;
  return u.protocol === 'smtps:' || (u.protocol === 'smtp:' && u.searchParams.get('requireTLS') === 'true');
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[?::1\]?)$/i;

/**
 * Whether a postgres:// URL is safe in transit: a loopback host or a Unix socket, or sslmode
 * require / verify-ca / verify-full (node-postgres verifies the certificate for all three), or
 * no-verify (encrypted, certificate unchecked: libpq's "require"). `disable` and `prefer` do not count.
 */
export function databaseUrlIsEncrypted(url: string): boolean {
  // NOTE: "postgres://user:pw@/db?host=/run/postgresql" (a socket) is not a WHATWG URL: no host means this machine.
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    u = new URL(url.replace(/@(?=\/)/, '@localhost'));
  }
  const host = decodeURIComponent(u.searchParams.get('host') ?? u.hostname);
  if (host === '' || host.startsWith('/') || LOOPBACK.test(host)) return true;
  const mode = u.searchParams.get('sslmode');
  return mode === 'require' || mode === 'verify-ca' || mode === 'verify-full' || mode === 'no-verify';
}
