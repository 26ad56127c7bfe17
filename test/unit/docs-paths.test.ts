import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';

/**
 * The docs name tests, source files and sections as evidence ("controls → where in code → which
 * test"); a renamed or deleted file makes such a sentence a promise nothing keeps. This walks the
 * docs and fails on any named path that does not exist, and on any in-page anchor with no heading.
 */

const ROOT = process.cwd();
const PATH = /\b((?:test|src|migrations|bench|deploy|seeds|views|public)\/[A-Za-z0-9_.\-/]*[A-Za-z0-9_-]\.(?:ts|mjs|cjs|js|ejs|css|md|json|sh))\b/g;

/** Named repository paths in `text` that do not exist under `root`. */
export function missingPaths(text: string, root: string = ROOT): string[] {
  return [...new Set([...text.matchAll(PATH)].map((m) => m[1]!))].filter((p) => !p.includes('*') && !existsSync(path.join(root, p)));
}

/** GitHub-style anchors of a Markdown file's headings. */
function anchors(text: string): Set<string> {
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => m[1]!.trim().toLowerCase().replace(/[^\p{L}\p{N}\- _]/gu, '').replace(/ /g, '-')));
}

/** In-page links (`](#x)`) of `text` with no heading to land on. */
export function brokenAnchors(text: string): string[] {
  const known = anchors(text);
  return [...text.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]!).filter((a) => !known.has(a));
}

function docs(): string[] {
  const out = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const walk = (dir: string) => {
    for (const e of readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      if (e.isDirectory()) walk(`${dir}/${e.name}`);
      else if (e.name === 'README.md') out.push(`${dir}/${e.name}`);
    }
  };
  walk('src');
  return out;
}

describe('the docs name only what exists', () => {
  it('finds the docs: README, docs/, and the READMEs under src/', () => {
    expect(docs()).to.include.members(['README.md', 'docs/SECURITY.md', 'docs/ARCHITECTURE.md', 'src/audit/README.md', 'src/crypto/README.md']);
  });

  for (const doc of docs()) {
    it(`${doc}: every named file exists and every in-page anchor has its heading`, () => {
      const text = readFileSync(path.join(ROOT, doc), 'utf8');
      expect(missingPaths(text), `${doc} names files that do not exist`).to.deep.equal([]);
      expect(brokenAnchors(text), `${doc} links to sections that do not exist`).to.deep.equal([]);
    });
  }

  it('the check fails on a test file that is not there, and on an anchor with no heading', () => {
    expect(missingPaths('Proved by test/http/patients.test.ts and test/http/no-such-thing.test.ts.')).to.deep.equal(['test/http/no-such-thing.test.ts']);
    expect(brokenAnchors('# Audit log\nSee [the log](#audit-log) and [keys](#key-rotation).')).to.deep.equal(['key-rotation']);
  });
});
