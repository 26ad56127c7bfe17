import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { generate } from 'otplib';
import type { Browser } from 'playwright-core';
import { createLogger } from '../../src/config/logger.js';
import { onDatabase } from '../../src/db/provision.js';
import { testBackupSettings } from '../support/backups.js';
import { backupJob, restoreDrillJob } from '../../src/jobs/backup.job.js';
import { runJob } from '../../src/jobs/scheduler.js';
import { createOperator } from '../../src/services/operators/operators.service.js';
import { buildTestApp } from '../support/app.js';
import { launchChromium, serveApp, watchedPage } from '../support/chromium.js';
import { testCluster } from '../support/cluster.js';
import { buildCryptoFixture, type CryptoFixture } from '../support/crypto.js';
import { useTestDatabase } from '../support/db.js';
import { buildPatient, buildPractice } from '../support/factories.js';
import { MemoryTransport } from '../support/mail.js';
import { testClock } from '../support/staff.js';

/** Issue 17, as the operator meets it: last night's backup and Sunday's drill on the Backups page. */
const SHOTS = path.resolve('test-results');

describe('backups in a real browser: the operator sees the backups and the drill', function () {
  this.timeout(90_000);
  const t = useTestDatabase();
  const clock = testClock();
  let fx: CryptoFixture;
  let dir: string;
  let base: string;
  let closeServer: (() => Promise<void>) | undefined;
  let browser: Browser;
  const problems: string[] = [];

  before(async () => {
    fx = await buildCryptoFixture(t.current);
    dir = await mkdtemp(path.join(os.tmpdir(), 'enamel-browser-backups-'));
    const p = await buildPractice(t.current.owner, { slug: 'backup-browser', name: 'Bicuspid Bay Dental' });
    for (let i = 0; i < 3; i++) await buildPatient(t.current.db, fx.keyring, p);
    ({ base, close: closeServer } = await serveApp(buildTestApp(t.current, { BACKUP_DIR: dir, BACKUP_DATABASE_URL: onDatabase(testCluster().superuserUrl, t.current.name), RESTORE_DRILL_SERVER_URL: testCluster().superuserUrl }, { keyring: fx.keyring, clock: clock.now }).app));
    await mkdir(SHOTS, { recursive: true });
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await closeServer?.();
    await rm(dir, { recursive: true, force: true });
    await fx?.cleanup();
  });

  it('after the nightly backup and the weekly drill, the page says when the backup was last proven to restore, with RPO and RTO', async () => {
    const settings = testBackupSettings(t.current.name, dir);
    const ctx = { db: t.current.db, provider: fx.keyring.provider, keyring: fx.keyring, transport: new MemoryTransport(), files: fx.files, logger: createLogger('silent'), backup: settings };
    expect((await runJob(backupJob, ctx)).outcome).to.equal('ok');
    expect((await runJob(restoreDrillJob, ctx)).outcome).to.equal('ok');

    const op = await createOperator(t.current.db.knex, fx.keyring.provider, { email: 'backups.op@platform.example', displayName: 'Bea Operator' });
    const page = await watchedPage(browser, problems, { width: 1100 });
    await page.goto(`${base}/operator/sign-in`);
    await page.getByLabel('Email').fill('backups.op@platform.example');
    await page.getByLabel('Password').fill(op.password);
    await page.getByLabel(/code/i).fill(await generate({ secret: op.secret, epoch: Math.floor(clock.now() / 1000) }));
    await page.getByRole('button', { name: /sign in/i }).click();
    await page.getByRole('link', { name: 'Backups' }).click();
    await page.getByRole('heading', { name: 'Backups', level: 1 }).waitFor();
    const text = await page.locator('main, body').first().innerText();
    expect(text).to.match(/last proven to restore on .*recovery point \d+ s .*recovery time \d+ s/s);
    expect(text).to.not.include('not configured');
    expect(text).to.match(/enamel-backup-\d{8}T\d{6}Z-[a-f0-9]{8}\.enbak/);
    expect(text).to.match(/passed\s+\d+ s\s+\d+ s\s+\d+ tables, [\d,]+ rows, 0 files, 0 audit chains verified/);
    await page.screenshot({ path: path.join(SHOTS, 'operator-backups.png'), fullPage: true });
    expect(problems).to.deep.equal([]);
  });
});
