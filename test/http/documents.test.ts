import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { readdir } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { expect } from 'chai';
import sharp from 'sharp';
import { generate } from 'otplib';
import type { browser } from '../support/browser.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn, STAFF_PASSWORD, type BuiltStaff } from '../support/staff.js';
import { rememberPhi } from '../support/phi-scan.js';

/** A JPEG carrying EXIF with a camera make and a GPS block (tag 0x8825). */
async function jpegWithGps(): Promise<Buffer> {
  return sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 220, g: 200, b: 190 } } })
    .jpeg()
    .withExif({ IFD0: { Make: 'TestCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '41/1 52/1 0/1' } })
    .toBuffer();
}

/** A PNG whose header claims 60,000 × 60,000 pixels (a decompression bomb's signature) with no real data. */
function pngBomb(): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body) >>> 0);
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(60_000, 0);
  ihdr.writeUInt32BE(60_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}

describe('documents and images: upload pipeline, signed URLs, multipart CSRF, audit', () => {
  const { t, clock, inPractice } = useStaffApp({ slug: 'docs-http' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let hygienist: BuiltStaff;
  let patientId: string;
  let built: StaffApp['built'];
  const counts = async () => ({
    documents: Number((await inPractice((trx) => trx('patient_documents').count<{ n: string }[]>({ n: '*' })))[0]!.n),
    files: Number((await inPractice((trx) => trx('stored_files').count<{ n: string }[]>({ n: '*' })))[0]!.n),
    blobs: (await readdir(fx.filesDir, { recursive: true }).catch(() => [])).length,
  });
  const docsPath = () => `/p/${p.slug}/patients/${patientId}/documents`;

  async function upload(b: ReturnType<typeof browser>, file: Buffer, name: string, fields: Record<string, string> = {}, token?: string) {
    const req = b.agent.post(docsPath());
    if (token !== undefined) req.field('_csrf', token);
    for (const [k, v] of Object.entries({ kind: 'intraoral_photo', ...fields })) req.field(k, v);
    return req.attach('file', file, name);
  }

  /** The first document's viewer page, and the signed URL of the file it shows. */
  async function viewerOf(b: ReturnType<typeof browser>, listText: string, index = 0): Promise<{ viewer: string; file: string; text: string }> {
    const viewers = [...listText.matchAll(/href="(\/p\/[^"]+\/documents\/[0-9a-f-]{36})">View/g)].map((m) => m[1]!);
    const viewer = viewers[index]!;
    const page = await b.agent.get(viewer);
    expect(page.status, viewer).to.equal(200);
    const file = /(?:<img src|<a class="button" href)="(\/p\/[^"]+\/files\/[^"]+)"/.exec(page.text)![1]!;
    return { viewer, file, text: page.text };
  }

  before(async () => {
    rememberPhi('Jane Doe', 'Upper left');
    hygienist = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['hygienist'] });
    patientId = (await buildPatient(t.current.db, fx.keyring, p)).id;
  });

  it('a photo loses its EXIF and GPS, is stored encrypted with a thumbnail, and every view is audited', async () => {
    const original = await jpegWithGps();
    expect((await sharp(original).metadata()).exif!.includes(Buffer.from([0x25, 0x88])), 'the test photo has GPS').to.equal(true);
    const b = await signIn(built.app, p.slug, hygienist, clock);
    const form = await b.form(docsPath());
    const res = await upload(b, original, 'IMG_0001 Jane Doe.jpg', { title: 'Upper left' }, form.token);
    expect(res.status).to.equal(303);
    const page = await b.agent.get(docsPath());
    expect(page.text).to.include('Upper left').and.not.include('Jane Doe');
    const thumb = /<img src="([^"]+)"/.exec(page.text)![1]!;
    const { file: view, text: viewerPage } = await viewerOf(b, page.text);
    // The viewer page: what it is, whose, zoom steps; the image comes through the signed URL.
    expect(viewerPage).to.include('Intraoral photo').and.include('Upper left').and.include('?zoom=200').and.include('class="viewer zoom-fit"');
    expect((await b.agent.get(`${(await viewerOf(b, page.text)).viewer}?zoom=400`)).text).to.include('class="viewer zoom-400"');
    expect((await b.agent.get(`${(await viewerOf(b, page.text)).viewer}?zoom=9999`)).text, 'an unknown zoom is fit').to.include('class="viewer zoom-fit"');

    const t1 = await b.agent.get(thumb).buffer(true);
    expect(t1.status).to.equal(200);
    expect(t1.headers['content-type']).to.equal('image/webp');
    const v = await b.agent.get(view).buffer(true);
    expect(v.status).to.equal(200);
    expect(v.headers).to.include({ 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    expect(v.headers['content-security-policy']).to.include('sandbox');
    expect(v.headers['content-disposition']).to.match(/^inline; filename="intraoral_photo-\d{4}-\d{2}-\d{2}-[0-9a-f]{8}\.jpg"$/);
    const served = v.body as Buffer;
    const meta = await sharp(served).metadata();
    expect(meta.exif, 'no EXIF at all').to.equal(undefined);
    expect(served.includes(Buffer.from('TestCam'))).to.equal(false);
    expect([meta.width, meta.height]).to.deep.equal([640, 480]);

    const token = view.split('/').pop()!;
    expect(JSON.stringify(built.logs)).to.not.include(token);
    expect(JSON.stringify(built.logs)).to.include('/files/:token');
    const blobs = await readdir(fx.filesDir, { recursive: true });
    expect(blobs.length).to.be.greaterThan(0);
    const events = await t.current.owner('audit_events').where({ practice_id: p.id, patient_id: patientId }).whereIn('action', ['upload', 'view', 'list']).pluck('action');
    expect(events).to.include.members(['upload', 'list', 'view']);
    expect(events.filter((a: string) => a === 'view').length).to.be.greaterThanOrEqual(2);
  });

  it('refuses a PNG named .pdf, HTML named .jpg, an oversized file and a decompression bomb — 4xx, nothing stored', async () => {
    const b = await signIn(built.app, p.slug, hygienist, clock);
    const form = await b.form(docsPath());
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toBuffer();
    const before = await counts();
    const cases: [Buffer, string, number, string][] = [
      [png, 'consent.pdf', 415, 'is named .pdf, but its content is a PNG image'],
      [Buffer.from('<html><script>alert(1)</script></html>'), 'photo.jpg', 415, 'This kind of file is not accepted.'],
      [Buffer.concat([png, Buffer.alloc(16 * 1024 * 1024)]), 'big.png', 413, 'larger than 15 MB'],
      [pngBomb(), 'bomb.png', 413, 'The image is too large (60000 × 60000 pixels'],
    ];
    for (const [bytes, name, status, message] of cases) {
      const res = await upload(b, bytes, name, {}, form.token);
      expect(res.status, name).to.equal(status);
      expect(res.text, name).to.include(message);
    }
    expect(await counts()).to.deep.equal(before);
    const noKind = await upload(b, png, 'a.png', { kind: 'selfie' }, form.token);
    expect(noKind.status).to.equal(400);
    expect(noKind.text).to.include('Choose what kind of document this is.');
    expect(await counts()).to.deep.equal(before);
    const pdf = await upload(b, Buffer.from('%PDF-1.7\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n'), 'consent.pdf', { kind: 'consent' }, form.token);
    expect(pdf.status, 'a PDF is accepted').to.equal(303);
  });

  it('a multipart POST without or with a wrong CSRF token is a 403 and stores nothing', async () => {
    const b = await signIn(built.app, p.slug, hygienist, clock);
    await b.form(docsPath());
    const before = await counts();
    expect((await upload(b, await jpegWithGps(), 'a.jpg')).status).to.equal(403);
    expect((await upload(b, await jpegWithGps(), 'a.jpg', {}, 'wrong-token')).status).to.equal(403);
    expect(await counts()).to.deep.equal(before);
  });

  it('signed URLs: refused when expired, altered, or used from another session; originals need a recent step-up', async () => {
    const b = await signIn(built.app, p.slug, hygienist, clock);
    const page = await b.agent.get(docsPath());
    const { file: view } = await viewerOf(b, page.text);
    const original = /href="(\/p\/[^"]+\/files\/[^"]+)">Download original/.exec(page.text)![1]!;
    const other = await signIn(built.app, p.slug, hygienist, clock);
    expect((await other.agent.get(view)).status, 'another session').to.equal(404);
    const altered = view.slice(0, -3) + (view.endsWith('AAA') ? 'BBB' : 'AAA');
    expect((await b.agent.get(altered)).status, 'altered').to.equal(404);
    expect((await b.agent.get(original)).status, 'fresh sign-in: original allowed').to.equal(200);

    clock.advance(6 * 60_000);
    expect((await b.agent.get(view)).status, 'expired').to.equal(404);
    const fresh = await b.agent.get(docsPath());
    const original2 = /href="(\/p\/[^"]+\/files\/[^"]+)">Download original/.exec(fresh.text)![1]!;
    const demanded = await b.agent.get(original2);
    expect(demanded.status).to.equal(303);
    // After the step-up, back to the document's viewer, whose download link now works.
    const viewerPath = `/p/${p.slug}/documents/${/\/documents\/([0-9a-f-]{36})">View/.exec(fresh.text)![1]!}`;
    expect(demanded.headers.location).to.equal(`/p/${p.slug}/step-up?next=${encodeURIComponent(viewerPath)}`);
    clock.advance(30_000);
    const step = await b.form(String(demanded.headers.location));
    const confirmed = await b.agent.post(`/p/${p.slug}/step-up`).type('form').send({ _csrf: step.token, password: STAFF_PASSWORD, code: await generate({ secret: hygienist.secret!, epoch: Math.floor(clock.now() / 1000) }), next: viewerPath });
    expect(confirmed.headers.location).to.equal(viewerPath);
    const again = await b.agent.get(viewerPath);
    const original3 = /href="(\/p\/[^"]+\/files\/[^"]+)">Download original/.exec(again.text)![1]!;
    const dl = await b.agent.get(original3);
    expect(dl.status).to.equal(200);
    expect(dl.headers['content-disposition']).to.match(/^attachment; /);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'download', patient_id: patientId })).to.have.length(2);
  });

  it('front desk and billing see insurance cards and ID, not radiographs or photos; deleting keeps the trail and removes the blobs', async () => {
    const desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    const billing = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['billing'] });
    const d = await signIn(built.app, p.slug, desk, clock);
    const form = await d.form(docsPath());
    expect(form.text).to.include('enctype="multipart/form-data"');
    expect(form.text, 'the front desk files office paperwork only').to.include('value="insurance_card"').and.include('value="photo_id"').and.not.include('value="radiograph"');
    const card = await sharp({ create: { width: 300, height: 190, channels: 3, background: '#eef' } }).png().toBuffer();
    expect((await upload(d, card, 'card.png', { kind: 'insurance_card', title: 'Delta card front' }, form.token)).status).to.equal(303);
    const refused = await upload(d, card, 'xray.png', { kind: 'radiograph' }, form.token);
    expect(refused.status, 'a kind the front desk may not file').to.equal(400);
    expect(refused.text).to.include('Choose what kind of document this is.');

    const b = await signIn(built.app, p.slug, hygienist, clock);
    const xrayForm = await b.form(docsPath());
    expect((await upload(b, card, 'bitewing.png', { kind: 'radiograph', title: 'Bitewing left' }, xrayForm.token)).status).to.equal(303);
    const clinical = await b.agent.get(docsPath());
    expect(clinical.text).to.include('Bitewing left').and.include('Delta card front');

    for (const [who, agent] of [['front desk', d], ['billing', await signIn(built.app, p.slug, billing, clock)]] as const) {
      const list = await agent.agent.get(docsPath());
      expect(list.status, who).to.equal(200);
      expect(list.text, who).to.include('Delta card front').and.not.include('Bitewing left');
      expect(list.text, who).to.match(/clinical images or documents are not shown to your role|One clinical image or document is not shown/);
      const { file } = await viewerOf(agent, list.text);
      expect((await agent.agent.get(file)).status, `${who}: the card`).to.equal(200);
    }
    // The radiograph's viewer and file, asked for directly by the front desk: not found, and the refusal audited.
    const xrayViewer = await viewerOf(b, clinical.text, [...clinical.text.matchAll(/<strong>([^<]+)<\/strong>/g)].map((m) => m[1]).indexOf('Bitewing left'));
    expect(xrayViewer.text).to.include('Bitewing left');
    expect((await d.agent.get(xrayViewer.viewer)).status, 'front desk: the radiograph viewer').to.equal(404);
    const radiographId = xrayViewer.viewer.split('/').pop()!;
    const deskDelete = await d.agent.post(`/p/${p.slug}/documents/${radiographId}/delete`).type('form').send({ _csrf: (await d.form(docsPath())).token });
    expect(deskDelete.status, 'front desk cannot delete what it cannot see').to.equal(404);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, actor_id: desk.id, outcome: 'denied', resource_id: radiographId })).to.have.length.greaterThanOrEqual(2);

    const page = await b.agent.get(docsPath());
    const { file: view } = await viewerOf(b, page.text);
    const docId = /\/documents\/([0-9a-f-]{36})\/delete/.exec(page.text)![1]!;
    const before = await counts();
    const removed = await b.agent.post(`/p/${p.slug}/documents/${docId}/delete`).type('form').send({ _csrf: (await b.form(docsPath())).token });
    expect(removed.status).to.equal(303);
    const after = await counts();
    expect(after.documents, 'the row stays').to.equal(before.documents);
    expect(after.files).to.be.lessThan(before.files);
    expect(after.blobs).to.be.lessThan(before.blobs);
    expect((await b.agent.get(view)).status, 'a deleted document is gone').to.equal(404);
    expect(await t.current.owner('audit_events').where({ practice_id: p.id, action: 'delete', resource_id: docId })).to.have.length(1);
  });
});
