import type { RequestHandler } from 'express';
import type { Config } from '../config/env.js';

/** GET /.well-known/security.txt — RFC 9116: where to report vulnerabilities, until when. */
export function securityTxt(config: Config): RequestHandler {
  const canonical = new URL('/.well-known/security.txt', config.publicUrl).toString();
  return (_req, res) => {
    res.type('text/plain; charset=utf-8').send(
      [
        `Contact: ${config.securityContact}`,
        `Expires: ${config.securityTxtExpires.toISOString()}`,
        'Preferred-Languages: en',
        `Canonical: ${canonical}`,
        '',
      ].join('\n'),
    );
  };
}
