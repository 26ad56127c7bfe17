import { createHash, createPublicKey, randomBytes, randomUUID, verify as verifySignature } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { KeyProvider } from '../crypto/key-provider.js';
import { SecretKey } from '../crypto/secret-key.js';
import { INSTALLATION_ID } from '../db/tenant.js';
import { appliedMigrations, backupTables, beginSnapshot, chainHeads, copyOut, exportSnapshot, NOT_BACKED_UP, serverMajor, snapshotClient, storedObjectNames, tableRows } from '../db/snapshot.js';
import { clientMajor, pgDump } from './pg-tools.js';
import type { FileStore } from '../storage/file-store.js';
import { ArchiveFormatError, ArchiveReader, ArchiveWriter, manifestSchema, signatureSchema, signedMessage, type Manifest, type PartLocation } from './archive.js';

/**
 * Backups (docs/BACKUP.md): create, verify, list and prune. Restoring is in restore.ts.
 *
 * A backup is one file: every backed-up table as COPY text from one snapshot, and every stored
 * file's blob as it is on disk (already encrypted under its practice's data key), each streamed
 * through the chunked AEAD under the backup's own key, plus a signed manifest. What a backup never
 * holds: key material. The key provider's KEKs and the practices' secrets (KEYS_DIR) are backed up
 * apart (src/crypto/README.md) — so a practice shredded after the backup stays unreadable when the
 * backup is restored.
 */

export const BACKUP_EXTENSION = '.enbak';

/**
 * `snapshot`: Enamel's own COPY of every table (works with every server). `pg_dump`: the custom
 * format, when a client at least as new as the server is installed. Unset: pg_dump when usable.
 */
export type BackupMethod = 'snapshot' | 'pg_dump';

/** Whether pg_dump can back up this server (installed, and not older than the server). */
async function pgDumpUsable(client: Parameters<typeof serverMajor>[0]): Promise<boolean> {
  const tool = await clientMajor('pg_dump');
  return tool !== undefined && tool >= (await serverMajor(client)) && (await clientMajor('pg_restore')) !== undefined;
}

/** The key context a backup's own key is wrapped under: bound to this backup alone. */
export const backupKeyContext = (backupId: string) => ({ practiceId: INSTALLATION_ID, purpose: `backup:${backupId}`, version: 1 });

export interface BackupResult {
  file: string;
  manifest: Manifest;
  bytes: number;
  seconds: number;
}

/** Counts the rows of a COPY text stream (one line per row; newlines inside values are escaped). */
export class RowCounter extends Transform {
  rows = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.rows++;
    done(null, chunk);
  }
}

/** A line of progress for long runs (the CLI prints them; the job logs none). */
export type Progress = (line: string) => void;

/**
 * Takes a backup into `dir`. `sourceUrl` must be a role row-level security does not filter (see
 * snapshot.ts); the file store is the installation's.
 */
export async function createBackup(
  source: { url: string; files: FileStore },
  dir: string,
  deps: { provider: KeyProvider; now?: () => Date; progress?: Progress; method?: BackupMethod },
): Promise<BackupResult> {
  const started = Date.now();
  const say = deps.progress ?? (() => undefined);
  const createdAt = (deps.now?.() ?? new Date()).toISOString();
  const id = randomUUID();
  const keyBytes = randomBytes(32);
  const wrap = await deps.provider.wrap(keyBytes, backupKeyContext(id));
  const key = new SecretKey(keyBytes);
  keyBytes.fill(0);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const name = `enamel-backup-${createdAt.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}-${id.slice(0, 8)}`;
  const partial = path.join(dir, `${name}${BACKUP_EXTENSION}.partial`);
  const file = path.join(dir, `${name}${BACKUP_EXTENSION}`);
  const writer = await ArchiveWriter.create(partial, { id, createdAt, kekId: wrap.kekId, wrappedKey: wrap.wrapped.toString('base64') }, key);
  const parts: Manifest['parts'] = [];
  try {
    const client = await snapshotClient(source.url, 'enamel-backup');
    let snapshot: Pick<Manifest, 'method' | 'schema' | 'tables' | 'chains'> & { objects: string[] };
    try {
      await beginSnapshot(client);
      const tables = await backupTables(client);
      const schema = await appliedMigrations(client);
      const chains = await chainHeads(client);
      const objects = await storedObjectNames(client);
      const counted: Manifest['tables'] = [];
      const method: BackupMethod = deps.method === 'pg_dump' || (deps.method === undefined && (await pgDumpUsable(client))) ? 'pg_dump' : 'snapshot';
      if (method === 'pg_dump') {
        // pg_dump reads the very snapshot this transaction holds, so the counts and chain heads match it.
        for (const table of tables) counted.push({ name: table, rows: await tableRows(client, table) });
        parts.push(await writer.part('pg_dump/database', pgDump(source.url, await exportSnapshot(client), [...NOT_BACKED_UP].filter((t) => !t.startsWith('knex_')))));
        say(`  pg_dump: ${counted.reduce((n, t) => n + t.rows, 0).toLocaleString('en-US')} rows in ${tables.length} tables`);
      } else {
        for (const table of tables) {
          const counter = new RowCounter();
          const rows = copyOut(client, table);
          rows.on('error', (e) => counter.destroy(e));
          parts.push(await writer.part(`db/${table}`, rows.pipe(counter)));
          counted.push({ name: table, rows: counter.rows });
          say(`  db/${table}: ${counter.rows.toLocaleString('en-US')} rows`);
        }
      }
      await client.query('COMMIT');
      snapshot = { method, schema, tables: counted, chains, objects };
    } finally {
      await client.end();
    }
    let fileBytes = 0;
    const missing: string[] = [];
    for (const [i, objectName] of snapshot.objects.entries()) {
      const blob = source.files.get(objectName);
      try {
        const p = await writer.part(`files/${objectName}`, blob);
        parts.push(p);
        fileBytes += p.bytes;
      } catch (err) {
        // CASE: a document deleted after the snapshot began: its blob went after the commit.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        missing.push(objectName);
      }
      if ((i + 1) % 500 === 0) say(`  files: ${(i + 1).toLocaleString('en-US')} of ${snapshot.objects.length.toLocaleString('en-US')}`);
    }
    const manifest: Manifest = {
      format: 1,
      method: snapshot.method,
      id,
      createdAt,
      schema: snapshot.schema,
      tables: snapshot.tables,
      chains: snapshot.chains,
      files: { count: snapshot.objects.length - missing.length, bytes: fileBytes, missing },
      parts,
    };
    const manifestBytes = Buffer.from(JSON.stringify(manifest));
    const signature = await deps.provider.signCheckpoint(signedMessage(manifestBytes));
    const bytes = await writer.finish(manifest, signature);
    await rename(partial, file);
    return { file, manifest, bytes, seconds: (Date.now() - started) / 1000 };
  } catch (err) {
    await writer.abandon();
    await rm(partial, { force: true });
    throw err;
  } finally {
    key.wipe();
  }
}

export type VerifyProblem = { part: string; reason: string };
export type VerifyOutcome = { ok: true; manifest: Manifest; parts: number; bytes: number } | { ok: false; problem: VerifyProblem; manifest?: Manifest };

/** The backup's own key, unwrapped by the provider (the manifest's signature is checked first). */
async function openKey(reader: ArchiveReader, provider: KeyProvider): Promise<SecretKey> {
  const wrapped = Buffer.from(reader.header.wrappedKey, 'base64');
  return new SecretKey(await provider.unwrap(reader.header.kekId, wrapped, backupKeyContext(reader.header.id)));
}

/** Checks the manifest's signature against the provider's signing key and parses it. */
async function checkManifest(reader: ArchiveReader, provider: KeyProvider): Promise<{ ok: true; manifest: Manifest } | { ok: false; problem: VerifyProblem }> {
  let sig;
  try {
    sig = signatureSchema.parse(JSON.parse(reader.signatureBytes.toString('utf8')));
  } catch {
    return { ok: false, problem: { part: 'manifest.sig', reason: 'the signature is malformed' } };
  }
  const publicKey = await provider.checkpointPublicKey(sig.keyId);
  if (!publicKey) return { ok: false, problem: { part: 'manifest.sig', reason: `signed with key ${sig.keyId}, which this installation's key provider does not hold` } };
  const valid = verifySignature(null, signedMessage(reader.manifestBytes), createPublicKey({ key: publicKey, format: 'der', type: 'spki' }), Buffer.from(sig.signature, 'base64'));
  if (!valid) return { ok: false, problem: { part: 'manifest', reason: 'the manifest does not match its signature (altered)' } };
  const parsed = manifestSchema.safeParse(JSON.parse(reader.manifestBytes.toString('utf8')));
  if (!parsed.success || parsed.data.id !== reader.header.id) return { ok: false, problem: { part: 'manifest', reason: 'the manifest is not this backup’s' } };
  return { ok: true, manifest: parsed.data };
}

/** Reads a stream to its end, hashing it. */
async function drainHash(stream: Readable): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _e, done) {
        hash.update(chunk);
        done();
      },
    }),
  );
  return hash.digest('hex');
}

async function drain(stream: Readable): Promise<void> {
  await pipeline(stream, new Writable({ write: (_c, _e, done) => done() }));
}

/**
 * Checks a backup without restoring it: the manifest's signature, that the file holds exactly the
 * manifest's parts, each part's SHA-256, and every chunk's authentication tag (each part is
 * decrypted and discarded). Names the first bad part.
 */
export async function verifyBackup(file: string, provider: KeyProvider, progress?: Progress): Promise<VerifyOutcome> {
  let reader: ArchiveReader;
  try {
    reader = await ArchiveReader.open(file);
  } catch (err) {
    if (err instanceof ArchiveFormatError) return { ok: false, problem: { part: 'file', reason: err.message } };
    throw err;
  }
  try {
    const checked = await checkManifest(reader, provider);
    if (!checked.ok) return checked;
    const { manifest } = checked;
    const byName = new Map(reader.parts.map((p) => [p.name, p]));
    for (const p of reader.parts) if (!manifest.parts.some((m) => m.name === p.name)) return { ok: false, problem: { part: p.name, reason: 'a part the manifest does not list' }, manifest };
    const key = await openKey(reader, provider);
    try {
      let bytes = 0;
      for (const [i, expected] of manifest.parts.entries()) {
        const part = byName.get(expected.name);
        if (!part) return { ok: false, problem: { part: expected.name, reason: 'missing from the file' }, manifest };
        if (part.bytes !== expected.bytes || (await drainHash(reader.raw(part))) !== expected.sha256) return { ok: false, problem: { part: expected.name, reason: 'its SHA-256 does not match the manifest' }, manifest };
        const tagProblem = await drain(reader.decrypted(part, key)).then(
          () => undefined,
          (e: unknown) => (e instanceof Error ? e.message : String(e)),
        );
        if (tagProblem) return { ok: false, problem: { part: expected.name, reason: `a chunk failed authentication (${tagProblem})` }, manifest };
        bytes += part.bytes;
        if ((i + 1) % 500 === 0) progress?.(`  verified ${(i + 1).toLocaleString('en-US')} of ${manifest.parts.length.toLocaleString('en-US')} parts`);
      }
      return { ok: true, manifest, parts: manifest.parts.length, bytes };
    } finally {
      key.wipe();
    }
  } finally {
    await reader.close();
  }
}

/** Opens a verified backup for restoring: the reader, its manifest and key. The caller closes the reader and wipes the key. */
export async function openVerifiedBackup(file: string, provider: KeyProvider): Promise<{ reader: ArchiveReader; manifest: Manifest; key: SecretKey; part(name: string): PartLocation }> {
  const outcome = await verifyBackup(file, provider);
  if (!outcome.ok) throw new BackupInvalidError(outcome.problem);
  const reader = await ArchiveReader.open(file);
  const key = await openKey(reader, provider);
  const byName = new Map(reader.parts.map((p) => [p.name, p]));
  return { reader, manifest: outcome.manifest, key, part: (name) => byName.get(name)! };
}

export class BackupInvalidError extends Error {
  constructor(readonly problem: VerifyProblem) {
    super(`the backup failed verification at ${problem.part}: ${problem.reason}`);
    this.name = 'BackupInvalidError';
  }
}

/** The backups in `dir`, newest first. */
export async function listBackups(dir: string): Promise<{ file: string; createdAt: Date; bytes: number }[]> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => /^enamel-backup-\d{8}T\d{6}Z-[a-f0-9]{8}\.enbak$/.test(n));
  const out: { file: string; createdAt: Date; bytes: number }[] = [];
  for (const n of names) {
    const m = /^enamel-backup-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(n)!;
    const info = await stat(path.join(dir, n));
    out.push({ file: path.join(dir, n), createdAt: new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`), bytes: info.size });
  }
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.file.localeCompare(a.file));
}

/**
 * Retention: removes every backup beyond the newest `keep`, and every one older than `maxAgeDays`
 * (a shredded practice's data must not outlive its tail in a backup); never the newest one.
 * Returns the files removed.
 */
export async function pruneBackups(dir: string, policy: { keep: number; maxAgeDays: number }, now: Date): Promise<string[]> {
  const all = await listBackups(dir);
  const cutoff = now.getTime() - policy.maxAgeDays * 86_400_000;
  const remove = all.filter((b, i) => i > 0 && (i >= policy.keep || b.createdAt.getTime() < cutoff));
  for (const b of remove) await rm(b.file, { force: true });
  return remove.map((b) => b.file);
}
