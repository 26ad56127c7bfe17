import { z } from 'zod';

/**
 * Message templates. SECURITY: a template can only contain fixed text, the practice's name and a
 * link — its parameter schema allows nothing else — so no patient detail can ever reach an email or
 * an SMS (DESIGN "Patient-facing links"). test/unit/messaging.test.ts renders every template.
 */
const linkParams = z.strictObject({
  practiceName: z.string().min(1).max(200),
  link: z.url({ protocol: /^https?$/ }),
});

export const TEMPLATES = {
  staff_password_reset: {
    channel: 'email',
    params: linkParams,
    render: (p: z.infer<typeof linkParams>) => ({
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
} as const;

export type TemplateName = keyof typeof TEMPLATES;

export function isTemplate(name: string): name is TemplateName {
  return Object.hasOwn(TEMPLATES, name);
}

/** Renders a template; throws if the parameters are not exactly what the template allows. */
export function renderTemplate(name: TemplateName, params: unknown): { subject: string; text: string } {
  const t = TEMPLATES[name];
  return t.render(t.params.parse(params));
}
