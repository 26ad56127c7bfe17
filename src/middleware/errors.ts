import type { ErrorRequestHandler, RequestHandler, Response } from 'express';

const TITLES: Record<number, { title: string; message: string }> = {
  400: { title: 'Bad request', message: 'The request could not be understood. Check the form and try again.' },
  403: { title: 'Not allowed', message: 'You do not have access to this page.' },
  404: { title: 'Page not found', message: 'There is nothing at this address. Check the link, or go back to the start page.' },
  413: { title: 'Request too large', message: 'What you sent is larger than this page accepts.' },
  500: { title: 'Something went wrong', message: 'The problem has been logged. Try again in a moment; if it keeps happening, give the reference below to your administrator.' },
};

/**
 * Renders the generic error page: a status, a fixed message and the request id. SECURITY: never
 * a stack, an error message or any data from the request.
 */
export function renderError(res: Response, status: number): void {
  const text = TITLES[status] ?? TITLES[status >= 500 ? 500 : 400]!;
  res.status(status);
  // CASE: an error raised after headers went out can only end the connection.
  if (res.headersSent) {
    res.end();
    return;
  }
  res.setHeader('Cache-Control', 'no-store');
  const requestId = res.req.id;
  res.format({
    html: () => res.render('errors/error', { title: text.title, status, message: text.message, requestId }),
    json: () => res.json({ error: text.title, status, requestId }),
    default: () => res.type('text/plain').send(`${status} ${text.title}\nReference: ${requestId}\n`),
  });
}

/** The 404 page for any address no route answers. */
export const notFound: RequestHandler = (_req, res) => renderError(res, 404);

/**
 * Last middleware: client errors raised by parsers (malformed or oversized bodies) keep their 4xx;
 * anything else is a 500, logged with the request id (serializeError keeps PHI out of the log).
 */
export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, _next) => {
  const status = clientStatus(err);
  if (status) {
    req.log.info({ status, type: (err as { type?: string }).type }, 'client error');
    return renderError(res, status);
  }
  req.log.error({ err }, 'unhandled error');
  renderError(res, 500);
};

function clientStatus(err: unknown): number | undefined {
  // CASE: PostgreSQL refuses a NUL byte in text (22021) or a JSON string (22P05). The form schemas
  // refuse it first (validation/text.ts); a field they miss is still bad input, not a server fault.
  const pg = (err as { code?: unknown } | null)?.code;
  if (pg === '22021' || pg === '22P05') return 400;
  const status = (err as { status?: unknown; statusCode?: unknown } | null)?.status ?? (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
