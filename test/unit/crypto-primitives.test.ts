import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { expect } from 'chai';
import { gcmDecrypt, gcmEncrypt } from '../../src/crypto/aead.js';
import { blindIndex, normalizeForIndex } from '../../src/crypto/blind-index.js';
import { DecryptionError } from '../../src/crypto/errors.js';
import { FileDecryptor, FileEncryptor } from '../../src/crypto/file-cipher.js';
import { decryptField, encryptField, fieldKeyVersion } from '../../src/crypto/field-cipher.js';
import { LocalKeyProvider } from '../../src/crypto/key-provider.js';
import { SecretKey } from '../../src/crypto/secret-key.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// NIST GCM specification (McGrew & Viega), AES-256 test cases 13–16.
const K = 'feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308';
const P = 'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39';
const C = '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662';
const VECTORS = [
  { name: 'TC13', key: '00'.repeat(32), iv: '00'.repeat(12), pt: '', aad: '', ct: '', tag: '530f8afbc74536b9a963b4f1c4cb738b' },
  { name: 'TC14', key: '00'.repeat(32), iv: '00'.repeat(12), pt: '00'.repeat(16), aad: '', ct: 'cea7403d4d606b6e074ec5d3baf39d18', tag: 'd0d1c8a799996bf0265b98b5d48ab919' },
  { name: 'TC15', key: K, iv: 'cafebabefacedbaddecaf888', pt: `${P}1aafd255`, aad: '', ct: `${C}898015ad`, tag: 'b094dac5d93471bdec1a502270e3cc6c' },
  { name: 'TC16', key: K, iv: 'cafebabefacedbaddecaf888', pt: P, aad: 'feedfacedeadbeeffeedfacedeadbeefabaddad2', ct: C, tag: '76fc6ece0f4e1768cddf8853bb2d551b' },
];

const place = { practiceId: randomUUID(), table: 'patients', column: 'last_name', rowId: randomUUID() };

describe('crypto primitives', () => {
  describe('AES-256-GCM (the one primitive)', () => {
    for (const v of VECTORS) {
      it(`passes NIST vector ${v.name} both ways`, () => {
        const { ciphertext, tag } = gcmEncrypt(hex(v.key), hex(v.iv), hex(v.pt), hex(v.aad));
        expect(ciphertext.toString('hex')).to.equal(v.ct);
        expect(tag.toString('hex')).to.equal(v.tag);
        expect(gcmDecrypt(hex(v.key), hex(v.iv), hex(v.ct), hex(v.tag), hex(v.aad)).toString('hex')).to.equal(v.pt);
      });
    }

    it('refuses a wrong tag with a typed error', () => {
      const v = VECTORS[3]!;
      const badTag = hex(v.tag);
      badTag[0]! ^= 1;
      expect(() => gcmDecrypt(hex(v.key), hex(v.iv), hex(v.ct), badTag, hex(v.aad))).to.throw(DecryptionError);
    });
  });

  describe('field envelope', () => {
    const key = new SecretKey(randomBytes(32));

    it('round-trips and records the key version in a versioned header', () => {
      const env = encryptField(key, 7, Buffer.from('Doe'), place);
      expect(env[0]).to.equal(1);
      expect(fieldKeyVersion(env)).to.equal(7);
      expect(env.includes(Buffer.from('Doe'))).to.equal(false);
      expect(decryptField(key, env, place).toString()).to.equal('Doe');
    });

    it('uses a fresh IV for every value', () => {
      const a = encryptField(key, 1, Buffer.from('same'), place);
      const b = encryptField(key, 1, Buffer.from('same'), place);
      expect(a.equals(b)).to.equal(false);
    });

    for (const [what, other] of [
      ['another row', { ...place, rowId: randomUUID() }],
      ['another column', { ...place, column: 'first_name' }],
      ['another table', { ...place, table: 'notes' }],
      ['another practice', { ...place, practiceId: randomUUID() }],
    ] as const) {
      it(`fails to decrypt when copied to ${what}`, () => {
        const env = encryptField(key, 1, Buffer.from('Doe'), place);
        expect(() => decryptField(key, env, other)).to.throw(DecryptionError);
      });
    }

    it('fails when any single byte is flipped', () => {
      const env = encryptField(key, 1, Buffer.from('Jane Q. Doe'), place);
      for (let i = 0; i < env.length; i++) {
        const bad = Buffer.from(env);
        bad[i]! ^= 0x01;
        expect(() => decryptField(key, bad, place), `byte ${i}`).to.throw(DecryptionError);
      }
    });
  });

  describe('keys never print', () => {
    it('SecretKey is redacted in strings, JSON and inspect', () => {
      const bytes = randomBytes(32);
      const key = new SecretKey(bytes);
      for (const text of [String(key), JSON.stringify({ key }), inspect(key), inspect({ nested: { key } })]) {
        expect(text).to.include('[redacted key]');
        expect(text).to.not.include(bytes.toString('hex'));
        expect(text).to.not.include(bytes.toString('base64'));
      }
    });

    const keysDir = path.join(os.tmpdir(), `enamel-unit-keys-${process.pid}`);
    after(() => rm(keysDir, { recursive: true, force: true }));

    it('a provider does not reveal its KEKs when inspected or serialised', () => {
      const kek = randomBytes(32).toString('base64');
      const provider = new LocalKeyProvider({ k1: kek }, 'k1', { practiceKeysDir: keysDir });
      expect(inspect(provider, { depth: 5, showHidden: true })).to.not.include(kek);
      expect(JSON.stringify(provider)).to.not.include(kek);
    });

    it('a data key wrapped for one practice/purpose/version does not unwrap for another', async () => {
      const provider = new LocalKeyProvider({ k1: randomBytes(32).toString('base64') }, 'k1', { practiceKeysDir: keysDir });
      const ctx = { practiceId: randomUUID(), purpose: 'fields', version: 1 };
      const { kekId, wrapped } = await provider.wrap(randomBytes(32), ctx);
      await provider.unwrap(kekId, wrapped, ctx);
      for (const other of [{ ...ctx, version: 2 }, { ...ctx, purpose: 'files' }]) {
        let err: unknown;
        await provider.unwrap(kekId, wrapped, other).catch((e: unknown) => (err = e));
        expect(err).to.be.instanceOf(DecryptionError);
      }
      // Another practice has other key material: it does not even get to try.
      let foreign: unknown;
      await provider.unwrap(kekId, wrapped, { ...ctx, practiceId: randomUUID() }).catch((e: unknown) => (foreign = e));
      expect(foreign).to.be.instanceOf(Error);
    });
  });

  describe('blind index normalisation', () => {
    it('treats case, spacing and punctuation of names alike', () => {
      const forms = ["O'Brien", 'o brien', '  OBRIEN ', 'O’Brien', 'o-brien'];
      expect(new Set(forms.map((f) => normalizeForIndex('name', f)))).to.have.property('size', 1);
      expect(normalizeForIndex('name', 'Müller')).to.equal('müller');
      expect(normalizeForIndex('name', ' - ')).to.equal(undefined);
    });

    it('accepts dates of birth in every documented format and refuses impossible ones', () => {
      for (const f of ['1980-03-07', '1980/3/7', '19800307', '03/07/1980', '3/7/1980', '03-07-1980', '3.7.1980']) {
        expect(normalizeForIndex('dob', f), f).to.equal('1980-03-07');
      }
      for (const bad of ['1980-02-30', '13/01/1980', '198037', '1980-3', 'yesterday', '1700-01-01']) {
        expect(normalizeForIndex('dob', bad), bad).to.equal(undefined);
      }
    });

    it('keeps digits only for phones (and drops a North American leading 1)', () => {
      expect(normalizeForIndex('phone', '(555) 010-0100')).to.equal('5550100100');
      expect(normalizeForIndex('phone', '+1 555.010.0100')).to.equal('5550100100');
      expect(normalizeForIndex('phone', '12')).to.equal(undefined);
      expect(normalizeForIndex('email', ' Jane.Doe@Example.COM ')).to.equal('jane.doe@example.com');
    });

    it('differs between keys (practices) and between kinds', () => {
      const a = new SecretKey(randomBytes(32));
      const b = new SecretKey(randomBytes(32));
      expect(blindIndex(a, 'name', 'doe').equals(blindIndex(b, 'name', 'doe'))).to.equal(false);
      expect(blindIndex(a, 'name', '5550100').equals(blindIndex(a, 'phone', '5550100'))).to.equal(false);
      expect(blindIndex(a, 'name', 'doe')).to.have.length(8);
    });
  });

  describe('chunked file encryption', () => {
    const key = new SecretKey(randomBytes(32));
    const binding = { practiceId: randomUUID(), fileId: randomUUID() };
    const SEG = 64;

    async function encrypt(data: Buffer, b = binding): Promise<Buffer> {
      const chunks: Buffer[] = [];
      // Feed in uneven pieces to exercise buffering.
      const pieces = [];
      for (let i = 0; i < data.length; i += 37) pieces.push(data.subarray(i, i + 37));
      for await (const c of Readable.from(pieces).pipe(new FileEncryptor(key, 3, b, SEG))) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    }
    async function decrypt(blob: Buffer, b = binding): Promise<Buffer> {
      const chunks: Buffer[] = [];
      for await (const c of Readable.from([blob]).pipe(new FileDecryptor(async () => key, b))) chunks.push(c as Buffer);
      return Buffer.concat(chunks);
    }
    async function decryptFails(blob: Buffer, b = binding): Promise<unknown> {
      try {
        await decrypt(blob, b);
        return undefined;
      } catch (e) {
        return e;
      }
    }

    for (const size of [0, 1, SEG - 1, SEG, SEG + 1, 3 * SEG, 3 * SEG + 17]) {
      it(`round-trips ${size} bytes`, async () => {
        const data = randomBytes(size);
        const blob = await encrypt(data);
        const segments = Math.max(1, Math.ceil(size / SEG));
        expect(blob.length).to.equal(17 + size + 16 * segments);
        expect((await decrypt(blob)).equals(data)).to.equal(true);
      });
    }

    it('fails when any byte is flipped', async () => {
      const blob = await encrypt(randomBytes(2 * SEG + 5));
      for (let i = 0; i < blob.length; i++) {
        const bad = Buffer.from(blob);
        bad[i]! ^= 0x80;
        expect(await decryptFails(bad), `byte ${i}`).to.be.instanceOf(DecryptionError);
      }
    });

    it('fails when truncated anywhere, including at a segment boundary', async () => {
      const blob = await encrypt(randomBytes(3 * SEG + 10));
      const segBytes = SEG + 16;
      for (const cut of [0, 5, 17, 17 + segBytes, 17 + 2 * segBytes, blob.length - 1, blob.length - 16]) {
        expect(await decryptFails(blob.subarray(0, cut)), `cut at ${cut}`).to.be.instanceOf(DecryptionError);
      }
    });

    it('fails when two segments are swapped, a segment is dropped, or data is appended', async () => {
      const blob = await encrypt(randomBytes(3 * SEG + 10));
      const h = blob.subarray(0, 17);
      const s = (i: number): Buffer => blob.subarray(17 + i * (SEG + 16), 17 + (i + 1) * (SEG + 16));
      const last = blob.subarray(17 + 3 * (SEG + 16));
      expect(await decryptFails(Buffer.concat([h, s(1), s(0), s(2), last]))).to.be.instanceOf(DecryptionError);
      expect(await decryptFails(Buffer.concat([h, s(0), s(2), last]))).to.be.instanceOf(DecryptionError);
      expect(await decryptFails(Buffer.concat([blob, s(0)]))).to.be.instanceOf(DecryptionError);
    });

    it('fails when a segment is spliced in from another file, or the file is opened as another file', async () => {
      const data = randomBytes(2 * SEG + 3);
      const a = await encrypt(data);
      const b = await encrypt(data);
      const spliced = Buffer.concat([a.subarray(0, 17 + SEG + 16), b.subarray(17 + SEG + 16)]);
      expect(await decryptFails(spliced)).to.be.instanceOf(DecryptionError);
      expect(await decryptFails(a, { ...binding, fileId: randomUUID() })).to.be.instanceOf(DecryptionError);
    });
  });
});
