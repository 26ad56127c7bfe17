import { Readable, Writable } from 'node:stream';
import { configure, TextReader, ZipWriter } from '@zip.js/zip.js';

// Node: no web workers; zip.js uses the platform's CompressionStream and Web Crypto.
configure({ useWebWorkers: false });

export interface ArchiveEntry {
  /** Path inside the archive: ids and resource types only, never a name or a title (zip file names are not encrypted). */
  name: string;
  source: () => Promise<Readable> | Readable | string;
}

/**
 * Writes a zip whose every entry is AES-256 encrypted with `passphrase` (WinZip AE-2: 7-Zip,
 * macOS Archive Utility via `ditto`, and most zip tools open it; ZipCrypto is never used). Entries
 * are streamed one after another; memory stays at one chunk.
 */
export async function writeEncryptedZip(out: Writable, entries: AsyncIterable<ArchiveEntry> | Iterable<ArchiveEntry>, passphrase: string): Promise<{ entries: number }> {
  const zip = new ZipWriter(Writable.toWeb(out), { password: passphrase, encryptionStrength: 3, zipCrypto: false, level: 6 });
  let n = 0;
  for await (const e of entries) {
    const src = await e.source();
    await zip.add(e.name, typeof src === 'string' ? new TextReader(src) : (Readable.toWeb(src) as unknown as ReadableStream));
    n++;
  }
  await zip.close();
  return { entries: n };
}
