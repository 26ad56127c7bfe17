import { z } from 'zod';
import { ALERT_KINDS, ALERT_LABELS } from '../alerts/alerts.js';

/**
 * Message templates. SECURITY: a template can only contain fixed text, the practice's name, a
 * link and (security alerts) an alert kind from a fixed list — its parameter schema allows nothing
 * else — so no patient detail can ever reach an email or an SMS (DESIGN "Patient-facing links"). test/unit/messaging.test.ts renders every template.
 */
const linkParams = z.strictObject({
  practiceName: z.string().min(1).max(200),
  link: z.url({ protocol: /^https?$/ }),
});
type LinkParams = z.infer<typeof linkParams>;

/** A security alert: the practice's name, the alert's kind (an enum) and the alerts page — nothing about who or what. */
const alertParams = z.strictObject({
  practiceName: z.string().min(1).max(200),
  alertKind: z.enum(ALERT_KINDS),
  link: z.url({ protocol: /^https?$/ }),
});
type AlertParams = z.infer<typeof alertParams>;

export const TEMPLATES = {
  staff_password_reset: {
    channel: 'email',
    params: linkParams,
    render: (p: LinkParams) => ({
      subject: `Reset your ${p.practiceName} password`,
      text: [
        `Someone asked to reset the password of your account at ${p.practiceName}.`,
        '',
        `To choose a new password, open this link within 30 minutes: ${p.link}`,
        '',
        'You will still need your authenticator app to sign in. If you did not ask for this, ignore this email: your password stays as it is.',
      ].join('\n'),
    }),
  },
  accounts_disabled_notice: {
    channel: 'email',
    params: linkParams,
    render: (p: LinkParams) => ({
      subject: `Unused accounts were disabled at ${p.practiceName}`,
      text: [
        `Accounts at ${p.practiceName} that nobody had used for a while were disabled automatically, and their sessions ended.`,
        '',
        `See which ones, and reactivate anyone who still needs access: ${p.link}`,
      ].join('\n'),
    }),
  },
  security_alert: {
    channel: 'email',
    params: alertParams,
    render: (p: AlertParams) => ({
      subject: `Security alert at ${p.practiceName}`,
      text: [
        `A security alert was raised at ${p.practiceName}: ${ALERT_LABELS[p.alertKind]}.`,
        '',
        `See it, and acknowledge it once you have looked into it: ${p.link}`,
        '',
        'You receive this because you are the practice’s security contact (or one of its owners). Sign in to see the details.',
      ].join('\n'),
    }),
  },
  patient_link_email: {
    channel: 'email',
    params: linkParams,
    render: (p: LinkParams) => ({
      subject: `A secure link from ${p.practiceName}`,
      text: [
        `${p.practiceName} has sent you a secure link.`,
        '',
        `Open it here: ${p.link}`,
        '',
        'You will be asked for your date of birth before anything is shown. The link works for a limited time. If you were not expecting this message, call the office.',
      ].join('\n'),
    }),
  },
  patient_link_sms: {
    channel: 'sms',
    params: linkParams,
    render: (p: LinkParams) => ({
      subject: '',
      text: `${p.practiceName}: you have a secure link from your dental office: ${p.link} Reply STOP to opt out, HELP for help.`,
    }),
  },
} as const;

export type TemplateName = keyof typeof TEMPLATES;

export function isTemplate(name: string): name is TemplateName {
  return Object.hasOwn(TEMPLATES, name);
}

/** Renders a template; throws if the parameters are not exactly what the template allows. */
export function renderTemplate(name: TemplateName, params: unknown): { subject: string; text: string } {
  const t = TEMPLATES[name] as { params: z.ZodType; render: (p: never) => { subject: string; text: string } };
  return t.render(t.params.parse(params) as never);
}

/** Fixed replies to inbound text keywords (the practice's name and phone number only). */
export const SMS_REPLIES = {
  stop: (practiceName: string) => `${practiceName}: you will no longer receive text messages from us. Reply START to receive them again.`,
  start: (practiceName: string) => `${practiceName}: you will receive text messages from us again. Reply STOP to opt out, HELP for help.`,
  help: (practiceName: string, phone: string | null) => `${practiceName}: messages about your dental care. ${phone ? `Call us at ${phone}. ` : ''}Reply STOP to opt out. Message and data rates may apply.`,
};
