import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';

/**
 * The layering (docs/ARCHITECTURE.md) is enforced by lint: each folder may import only what its
 * layer may (eslint.config.js, `layer(...)`). These samples prove each boundary fires, and that a
 * type-only import (a controller naming the Db type it passes on) stays allowed.
 */
describe('layering: lint refuses imports across the layers', function () {
  this.timeout(60_000);
  const eslint = new ESLint({ cwd: process.cwd() });
  const refusals = async (filePath: string, code: string): Promise<string[]> => {
    const [result] = await eslint.lintText(code, { filePath });
    return result!.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => m.message);
  };

  it('a controller importing queries, the database or the audit writer', async () => {
    expect(await refusals('src/controllers/sample.controller.ts', "import { findPatient } from '../queries/patients.queries.js';\nexport const x = findPatient;\n")).to.have.length(1);
    expect(await refusals('src/controllers/sample.controller.ts', "import { withPractice } from '../db/tenant.js';\nexport const x = withPractice;\n")).to.have.length(1);
    expect(await refusals('src/controllers/sample.controller.ts', "import { audit } from '../audit/record.js';\nexport const x = audit;\n")).to.have.length(1);
    expect(await refusals('src/controllers/sample.controller.ts', "import type { Db } from '../db/tenant.js';\nexport type X = Db;\n"), 'a type-only import').to.deep.equal([]);
  });

  it('a service importing Express; queries importing a service; a policy importing queries; the database layer importing a seed', async () => {
    expect(await refusals('src/services/sample/sample.service.ts', "import express from 'express';\nexport const x = express;\n")).to.have.length(1);
    expect(await refusals('src/queries/sample.queries.ts', "import { showPatient } from '../services/patients/patients.service.js';\nexport const x = showPatient;\n")).to.have.length(1);
    expect(await refusals('src/policies/sample.policy.ts', "import { findPatient } from '../queries/patients.queries.js';\nexport const x = findPatient;\n")).to.have.length(1);
    expect(await refusals('src/db/sample.ts', "import { seedDemo } from '../../seeds/demo.js';\nexport const x = seedDemo;\n")).to.have.length(1);
  });

  it('staff actions in services run through staffWork, which checks authorize() was asked (a direct withPractice as the user would skip it)', () => {
    const files = readdirSync('src/services', { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && f !== 'staff-work.ts');
    const direct = files.filter((f) => /withPractice\(actor\.practiceId, \{ kind: 'user'/.test(readFileSync(path.join('src/services', f), 'utf8')));
    expect(direct).to.deep.equal([]);
    expect(files.length, 'the scan saw the services').to.be.greaterThan(20);
  });

  it('the tree as it is passes', async () => {
    const results = await eslint.lintFiles(['src/controllers', 'src/services', 'src/queries', 'src/policies', 'src/db', 'src/crypto']);
    const breaches = results.flatMap((r) => r.messages.filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports').map((m) => `${r.filePath}: ${m.message}`));
    expect(breaches).to.deep.equal([]);
  });
});
