import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import { hashPassword } from '../src/auth/password-hash.js';
import { newRecoveryCodes, newTotpSecret, totpUri } from '../src/auth/totp.js';
import { PracticeCrypto } from '../src/crypto/encrypted-columns.js';
import type { Keyring } from '../src/crypto/keyring.js';
import { withPractice } from '../src/db/tenant.js';
import { userSecrets } from '../src/queries/users.queries.js';
import { createOperator } from '../src/services/operators/operators.service.js';

/**
 * Evaluation only: the demo practice's owner account, with a generated password and TOTP secret,
 * printed once and written to DATA_DIR/demo-owner.txt (mode 0600). Production has no default
 * accounts (the demo seed is refused there).
 */
export const DEMO_OWNER_EMAIL = 'owner@demo.example';
export const DEMO_OWNER_FILE = 'demo-owner.txt';
export const DEMO_OPERATOR_EMAIL = 'operator@demo.example';

export async function seedDemoOwner(owner: Knex, keyring: Keyring, practiceId: string, dataDir: string, publicUrl: string): Promise<string | undefined> {
  const password = randomBytes(18).toString('base64url');
  const secret = newTotpSecret();
  const { codes, hashes } = newRecoveryCodes();
  const id = randomUUID();
  const passwordHash = await hashPassword(password);
  const created = await owner.transaction(async (trx) =>
    withPractice(trx, practiceId, { kind: 'system', id: 'seed' }, async (t) => {
      if (await t('users').where({ email: DEMO_OWNER_EMAIL }).first('id')) return false;
      const sealed = await userSecrets.seal(new PracticeCrypto(keyring, t, practiceId), id, { totp_secret: secret });
      await t('users').insert({ id, practice_id: practiceId, email: DEMO_OWNER_EMAIL, display_name: 'Demo Owner', status: 'active', is_owner: true, password_hash: passwordHash, ...sealed, mfa_enrolled_at: t.fn.now() });
      await t('user_recovery_codes').insert(hashes.map((code_hash) => ({ practice_id: practiceId, user_id: id, code_hash })));
      return true;
    }),
  );
  if (!created) return undefined;
  // The platform operator of this evaluation installation (practice management; sees no PHI).
  const operator = (await owner('operators').where({ email: DEMO_OPERATOR_EMAIL }).first('id')) ? undefined : await createOperator(owner, keyring.provider, { email: DEMO_OPERATOR_EMAIL, displayName: 'Demo Operator' });
  const signIn = new URL('/p/demo/sign-in', publicUrl).toString();
  const text = [
    'Enamel demo practice — owner account (EVALUATION ONLY, fake practice)',
    `Sign in at:       ${signIn}`,
    `Email:            ${DEMO_OWNER_EMAIL}`,
    `Password:         ${password}`,
    `TOTP secret:      ${secret}   (add it to an authenticator app, or scan the URI below)`,
    `TOTP URI:         ${totpUri(secret, DEMO_OWNER_EMAIL, 'Enamel demo')}`,
    `Recovery codes:   ${codes.join('  ')}`,
    '',
    ...(operator
      ? [
          'Platform operator (manages practices, sees no patient data)',
          `Sign in at:       ${new URL('/operator/sign-in', publicUrl).toString()}`,
          `Email:            ${DEMO_OPERATOR_EMAIL}`,
          `Password:         ${operator.password}`,
          `TOTP secret:      ${operator.secret}`,
          '',
        ]
      : []),
  ].join('\n');
  const file = path.join(dataDir, DEMO_OWNER_FILE);
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  return text;
}

/** The demo owner's id, if the demo owner exists. */
export async function demoOwnerId(owner: Knex, practiceId: string): Promise<string | undefined> {
  return owner.transaction((trx) =>
    withPractice(trx, practiceId, { kind: 'system', id: 'seed' }, async (t) => (await t('users').where({ email: DEMO_OWNER_EMAIL }).first<{ id: string } | undefined>('id'))?.id),
  );
}
