/** The archive's readable index: what the export holds, every file in it listed (docs/EXPORT.md). */
export interface IndexFile {
  path: string;
  description: string;
  bytes?: number | undefined;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function exportIndexHtml(o: { practiceName: string; createdAt: Date; scope: 'practice' | 'patient'; files: IndexFile[] }): string {
  const rows = o.files.map((f) => `<tr><td><a href="${esc(f.path)}">${esc(f.path)}</a></td><td>${esc(f.description)}</td><td>${f.bytes === undefined ? '' : `${f.bytes.toLocaleString('en-US')} bytes`}</td></tr>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Export of ${esc(o.practiceName)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}</style></head>
<body>
<h1>Export of ${esc(o.practiceName)}</h1>
<p>${o.scope === 'patient' ? 'One patient’s records' : 'Every patient’s records'} as of ${esc(o.createdAt.toISOString().slice(0, 16).replace('T', ' '))} UTC, exported from Enamel.</p>
<p>The records are HL7 FHIR R4 resources, one JSON resource per line (NDJSON), one file per resource type; documents and images are in <code>files/</code>, named by their DocumentReference id. Every file in this archive is listed below.</p>
<table><thead><tr><th>File</th><th>What it holds</th><th>Size</th></tr></thead><tbody>
${rows}
<tr><td>index.html</td><td>This page</td><td></td></tr>
</tbody></table>
</body></html>
`;
}
