import { expect } from 'chai';
import { renderTemplate, TEMPLATES, type TemplateName } from '../../src/messaging/templates.js';

/** A patient as it might be (wrongly) handed to a template. */
const PATIENT = { givenName: 'Marisol', familyName: 'Quintanilla', dateOfBirth: '1975-03-14', phone: '555-010-7788', diagnosis: 'periodontitis' };

describe('message templates', () => {
  for (const name of Object.keys(TEMPLATES) as TemplateName[]) {
    it(`${name}: renders only the practice name, the link and fixed text; no patient field can get in`, () => {
      const extra = name === 'security_alert' ? { alertKind: 'signin_lockout' } : {};
      const out = renderTemplate(name, { practiceName: 'Bright Smiles', link: 'https://enamel.example/p/x/password-reset/abc', ...extra });
      expect(out.text).to.include('Bright Smiles').and.include('https://enamel.example/p/x/password-reset/abc');
      expect(() => renderTemplate(name, { practiceName: 'Bright Smiles', link: 'https://enamel.example/x', ...extra, ...PATIENT })).to.throw();
      expect(() => renderTemplate(name, { practiceName: 'Bright Smiles', link: 'javascript:alert(1)', ...extra })).to.throw();
      if (name === 'security_alert') expect(() => renderTemplate(name, { practiceName: 'Bright Smiles', link: 'https://enamel.example/x', alertKind: PATIENT.familyName })).to.throw();
      const withPatientInParams = JSON.stringify(out);
      for (const value of Object.values(PATIENT)) expect(withPatientInParams).to.not.include(value);
    });
  }
});
