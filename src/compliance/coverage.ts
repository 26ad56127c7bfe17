import { z } from 'zod';
import type { Config } from '../config/env.js';
import { TEMPLATES } from '../messaging/templates.js';

/**
 * The coverage map (docs/INCIDENTS.md "Business associates"): which outside services this
 * installation is configured to use, what each receives, and whether an executed business associate
 * agreement covers it. Derived from the configuration, never typed in: an integration that is
 * configured shows up whether or not anyone remembered to register it.
 */

export const INTEGRATIONS = ['hosting', 'database', 'file_store', 'backup_target', 'email', 'sms', 'key_provider'] as const;
export type Integration = (typeof INTEGRATIONS)[number];

export interface ConfiguredIntegration {
  integration: Integration;
  label: string;
  /** Where it is (a host name or a directory; never a credential). */
  where: string;
  /** Whether it holds or receives PHI; when not, why not. */
  phi: boolean;
  reason: string;
}

/**
 * The message templates' parameters a message may carry and still hold no PHI: the practice's name,
 * a link (opaque), an alert kind from a fixed list. A template whose schema allows anything else
 * (a name, a date, a procedure) makes its channel a PHI-carrying one.
 */
export const NO_PHI_PARAMS: Readonly<Record<string, (s: z.ZodType) => boolean>> = {
  practiceName: (s) => s instanceof z.ZodString,
  link: (s) => s instanceof z.ZodURL || s instanceof z.ZodString,
  alertKind: (s) => s instanceof z.ZodEnum,
};

type TemplateLike = { channel: 'email' | 'sms'; params: z.ZodType };

/** Whether every template of a channel, by its parameter schema, can carry no PHI; the parameters that could, if any. */
export function templatesCarryNoPhi(channel: 'email' | 'sms', templates: Readonly<Record<string, TemplateLike>> = TEMPLATES): { ok: boolean; offending: string[] } {
  const offending: string[] = [];
  for (const [name, t] of Object.entries(templates)) {
    if (t.channel !== channel) continue;
    // Only a strict object schema is a closed list of parameters.
    if (!(t.params instanceof z.ZodObject) || !(t.params.def.catchall instanceof z.ZodNever)) {
      offending.push(`${name}: open parameters`);
      continue;
    }
    for (const [key, schema] of Object.entries(t.params.shape as Record<string, z.ZodType>)) {
      const allowed = NO_PHI_PARAMS[key];
      if (!allowed || !allowed(schema)) offending.push(`${name}.${key}`);
    }
  }
  return { ok: offending.length === 0, offending };
}

const hostOf = (url: string): string => {
  try {
    return new URL(url).hostname || 'unknown host';
  } catch {
    return 'unknown host';
  }
};

/** The integrations this configuration uses. */
export function configuredIntegrations(config: Pick<Config, 'database' | 'filesDir' | 'backup' | 'mail' | 'sms' | 'keys' | 'publicUrl'>, templates?: Readonly<Record<string, TemplateLike>>): ConfiguredIntegration[] {
  const out: ConfiguredIntegration[] = [
    { integration: 'hosting', label: 'The server Enamel runs on', where: config.publicUrl.hostname, phi: true, reason: 'Runs the application: every record passes through it.' },
    {
      integration: 'database',
      label: 'The database',
      where: config.database.kind === 'external' ? hostOf(config.database.runtimeUrl) : 'embedded, on this server',
      phi: true,
      reason: 'Holds every record (encrypted fields, but identifiers and dates too).',
    },
    { integration: 'file_store', label: 'The file store', where: config.filesDir, phi: true, reason: 'Holds documents and images (encrypted).' },
    { integration: 'backup_target', label: 'Backups', where: config.backup.dir, phi: true, reason: 'Encrypted copies of the database and files: still PHI held for the practice.' },
  ];
  if (config.mail.transport === 'smtp') {
    const check = templatesCarryNoPhi('email', templates);
    out.push({ integration: 'email', label: 'Email provider (SMTP)', where: hostOf(config.mail.url), phi: !check.ok, reason: check.ok ? 'No PHI by design: every email template carries only the practice’s name, an opaque link or an alert kind.' : `Templates could carry patient details: ${check.offending.join(', ')}.` });
  }
  if (config.sms.transport === 'http') {
    const check = templatesCarryNoPhi('sms', templates);
    out.push({ integration: 'sms', label: 'Text message provider', where: hostOf(config.sms.apiUrl), phi: !check.ok, reason: check.ok ? 'No PHI by design: every text carries only the practice’s name and an opaque link.' : `Templates could carry patient details: ${check.offending.join(', ')}.` });
  }
  if (config.keys.kind !== 'evaluation') {
    out.push({ integration: 'key_provider', label: 'Key-encryption keys', where: config.keys.kind === 'file' ? 'a key file on this server' : 'environment variables', phi: false, reason: 'Holds the keys that wrap the practices’ data keys, never a record.' });
  }
  return out;
}

export type CoverageState = 'covered' | 'own_system' | 'missing' | 'expired' | 'no_phi';

export interface VendorLike {
  id: string;
  name: string;
  integration: string | null;
  dataSeen: 'phi' | 'messages_no_phi' | 'none';
  /** not_required: the practice's own system or workforce (no business associate). */
  agreement: 'none' | 'requested' | 'executed' | 'expired' | 'not_required';
  expiresOn: string | null;
}

/** An agreement as of `today` (YYYY-MM-DD): an executed one past its end date is expired. */
export function agreementOn(v: Pick<VendorLike, 'agreement' | 'expiresOn'>, today: string): VendorLike['agreement'] {
  return v.agreement === 'executed' && v.expiresOn !== null && v.expiresOn <= today ? 'expired' : v.agreement;
}

export interface CoverageLine {
  key: string;
  integration: ConfiguredIntegration | null;
  vendor: VendorLike | null;
  state: CoverageState;
}

/**
 * Every configured integration beside its registry entry, and every registered vendor that sees PHI:
 * covered (an executed agreement in force), the practice's own system (no business associate: the
 * entry says so), missing (none, or only requested), expired, or "no PHI by design" (with the reason).
 */
export function coverageMap(integrations: readonly ConfiguredIntegration[], vendors: readonly VendorLike[], today: string): CoverageLine[] {
  const stateOf = (phi: boolean, v: VendorLike | undefined): CoverageState => {
    if (!phi) return 'no_phi';
    const a = v ? agreementOn(v, today) : 'none';
    return a === 'executed' ? 'covered' : a === 'not_required' ? 'own_system' : a === 'expired' ? 'expired' : 'missing';
  };
  const lines: CoverageLine[] = integrations.map((i) => {
    const v = vendors.find((x) => x.integration === i.integration);
    return { key: i.integration, integration: i, vendor: v ?? null, state: stateOf(i.phi, v) };
  });
  for (const v of vendors) {
    if (v.integration && integrations.some((i) => i.integration === v.integration)) continue;
    lines.push({ key: `vendor:${v.id}`, integration: null, vendor: v, state: stateOf(v.dataSeen === 'phi', v) });
  }
  return lines;
}

/** The gaps an alert is about: PHI without an agreement in force. */
export const isGap = (l: CoverageLine): boolean => l.state === 'missing' || l.state === 'expired';
