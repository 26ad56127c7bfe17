import { useStaffApp, type StaffApp } from '../support/staff-app.js';
import { expect } from 'chai';
import { fillMissingIndexes } from '../../src/crypto/key-management.js';
import type { CryptoFixture } from '../support/crypto.js';
import { buildPatient, buildPractice, type BuiltPractice } from '../support/factories.js';
import { buildStaff, signIn } from '../support/staff.js';

/**
 * What a front desk types: the first letters of a last name, first and last name together, the
 * phone's last four digits. Each goes through a blind index (src/crypto/README.md); results show
 * age and a masked phone; another practice's patients never appear.
 */
describe('patient search: last-name prefix, first + last name, phone last four', () => {
  const { t, clock } = useStaffApp({ slug: 'search-http' }, (s) => ({ fx, p, built } = s));
  let fx: CryptoFixture;
  let p: BuiltPractice;
  let other: BuiltPractice;
  let built: StaffApp['built'];
  const ids: Record<string, string> = {};

  before(async () => {
    other = await buildPractice(t.current.owner, { slug: 'search-other' });
    const make = async (key: string, practice: BuiltPractice, v: { givenName: string; familyName: string; phone: string; dateOfBirth?: string }) => {
      ids[key] = (await buildPatient(t.current.db, fx.keyring, practice, v)).id;
    };
    await make('harriet', p, { givenName: 'Harriet', familyName: 'Thistlewood', phone: '(555) 010-4821', dateOfBirth: '1950-06-15' });
    await make('thomas', p, { givenName: 'Thomas', familyName: 'Thistlewaite', phone: '(555) 010-7730' });
    await make('vanderberg', p, { givenName: 'Joanna', familyName: 'Van der Berg', phone: '(555) 010-6001' });
    await make('ng', p, { givenName: 'Lan', familyName: 'Ng', phone: '(555) 010-9090' });
    // Same names and last four in another practice: never found from this one.
    await make('elsewhere', other, { givenName: 'Harriet', familyName: 'Thistlewood', phone: '(555) 099-4821' });
  });

  const search = async (q: string) => {
    const desk = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'] });
    const b = await signIn(built.app, p.slug, desk, clock);
    const page = await b.form(`/p/${p.slug}/patients`);
    const res = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q });
    expect(res.status, q).to.equal(200);
    return { text: res.text, found: Object.keys(ids).filter((k) => res.text.includes(`/patients/${ids[k]}`)).sort() };
  };

  it('three or more letters of a last name find every last name starting so; case and punctuation do not matter', async () => {
    expect((await search('thi')).found).to.deep.equal(['harriet', 'thomas']);
    expect((await search('THISTLEWO')).found).to.deep.equal(['harriet']);
    expect((await search('van der')).found).to.deep.equal(['vanderberg']);
    expect((await search('vande')).found).to.deep.equal(['vanderberg']);
    // Two letters: the whole last name, exactly.
    expect((await search('ng')).found).to.deep.equal(['ng']);
    expect((await search('th')).found).to.deep.equal([]);
  });

  it('first and last name together, either order, each as a beginning', async () => {
    expect((await search('Harriet Thistlewood')).found).to.deep.equal(['harriet']);
    expect((await search('Thistlewood, Harriet')).found).to.deep.equal(['harriet']);
    expect((await search('tho thi')).found).to.deep.equal(['thomas']);
    expect((await search('Joanna Van der Berg')).found).to.deep.equal(['vanderberg']);
    expect((await search('Harriet Thistlewaite')).found).to.deep.equal([]);
    // Last name first without the comma, as charts list it.
    expect((await search('thistlewood harriet')).found).to.deep.equal(['harriet']);
  });

  it('results are in last-name order, then first name: a shorter last name comes before a longer one it begins', async () => {
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Avery', familyName: 'Maplestone', phone: '(555) 010-1111' });
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Alex', familyName: 'Maplestone-Applewood', phone: '(555) 010-2222' });
    await buildPatient(t.current.db, fx.keyring, p, { givenName: 'Zoe', familyName: 'Maplestone', phone: '(555) 010-3333' });
    const { text } = await search('maple');
    const order = [...text.matchAll(/>(Maplestone[^<]*)<\/a>/g)].map((m) => m[1]);
    expect(order).to.deep.equal(['Maplestone, Avery', 'Maplestone, Zoe', 'Maplestone-Applewood, Alex']);
  });

  it('someone assigned to no location is told why nobody is found', async () => {
    const nowhere = await buildStaff(t.current, { keyring: fx.keyring, now: clock.now }, p, { roles: ['front_desk'], locations: [] });
    const b = await signIn(built.app, p.slug, nowhere, clock);
    const page = await b.form(`/p/${p.slug}/patients`);
    expect(page.text).to.include('You are not assigned to any location');
    const res = await b.agent.post(`/p/${p.slug}/patients/search`).type('form').send({ _csrf: page.token, q: 'thi' });
    expect(res.text).to.include('You are not assigned to any location').and.not.include(`/patients/${ids.harriet}"`);
  });

  it('the last four digits of a phone; results show age and only the last four digits', async () => {
    const r = await search('4821');
    expect(r.found).to.deep.equal(['harriet']);
    expect(r.text).to.include('•••-•••-4821').and.not.include('010-4821');
    const age = new Date(clock.now()).getUTCFullYear() - 1950 - (new Date(clock.now()).getUTCMonth() < 5 || (new Date(clock.now()).getUTCMonth() === 5 && new Date(clock.now()).getUTCDate() < 15) ? 1 : 0);
    expect(r.text).to.match(new RegExp(`<td>${age}</td>`));
    expect((await search('0000')).found).to.deep.equal([]);
  });

  it('rows written before the new indexes get them from fillMissingIndexes (start-up, `enamel keys resume`)', async () => {
    const cleared = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').where({ id: ids.harriet }).update({ family_name_prefix_bidx: null, phone_last4_bidx: null }));
    expect(cleared).to.equal(1);
    expect((await search('thistlewo')).found).to.deep.equal([]);
    expect((await search('4821')).found).to.deep.equal([]);
    const filled = await fillMissingIndexes({ db: t.current.db, keyring: fx.keyring, files: fx.files }, { kind: 'system', id: 'test' });
    expect(filled).to.equal(1);
    expect((await search('thistlewo')).found).to.deep.equal(['harriet']);
    expect((await search('4821')).found).to.deep.equal(['harriet']);
    // A second run has nothing to do (Ng's two-letter name has no prefix index and stays without one).
    expect(await fillMissingIndexes({ db: t.current.db, keyring: fx.keyring, files: fx.files }, { kind: 'system', id: 'test' })).to.equal(0);
    const ng = await t.current.db.withPractice(p.id, { kind: 'system', id: 'test' }, (trx) => trx('patients').where({ id: ids.ng }).first('family_name_prefix_bidx', 'phone_last4_bidx'));
    expect(ng.family_name_prefix_bidx).to.equal(null);
    expect(Buffer.isBuffer(ng.phone_last4_bidx)).to.equal(true);
  });
});
