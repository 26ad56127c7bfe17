import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { chromium, type Browser, type Page } from 'playwright-core';
import { generate } from 'otplib';
import { STAFF_PASSWORD } from './staff.js';

/** Debian's Chromium (apt-get install chromium); never a browser downloaded by npm. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Chromium headless, quiet: no sandbox (containers, CI as root), no background network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The app on a free port of 127.0.0.1; `close` stops it. */
export async function serveApp(app: Express): Promise<{ base: string; close: () => Promise<void> }> {
  const server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/**
 * A page whose console errors and page errors are collected into `problems` (a test then asserts
 * none), except resource errors with a status the test asks for on purpose (e.g. 401 for a wrong
 * password).
 */
export async function watchedPage(browser: Browser, problems: string[], options: { width?: number; height?: number; expectedStatuses?: number[] } = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1000, height: options.height ?? 800 } });
  const expected = options.expectedStatuses ?? [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const status = /status of (\d{3})/.exec(m.text())?.[1];
    if (!status || !expected.includes(Number(status))) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  return page;
}

/** Signs a staff member in through the real forms (password, then the code at the test clock's time, 30 s later). */
export async function signInInBrowser(page: Page, base: string, slug: string, staff: { email: string; secret?: string | null }, clock: { now: () => number; advance: (ms: number) => void }): Promise<void> {
  await page.goto(`${base}/p/${slug}/sign-in`);
  await page.getByLabel('Email address').fill(staff.email);
  await page.getByLabel('Password').fill(STAFF_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  clock.advance(30_000);
  await page.getByLabel('Code', { exact: true }).fill(await generate({ secret: staff.secret!, epoch: Math.floor(clock.now() / 1000) }));
  await page.getByRole('button', { name: 'Continue' }).click();
}
