import request from 'supertest';

/** A cookie-keeping client that reads the CSRF token from each form page, like a browser. */
export function browser(app: Parameters<typeof request.agent>[0]) {
  const agent = request.agent(app);
  return {
    agent,
    async form(path: string): Promise<{ status: number; token: string; text: string }> {
      const res = await agent.get(path);
      const token = /name="_csrf" value="([^"]+)"/.exec(res.text)?.[1] ?? '';
      return { status: res.status, token, text: res.text };
    },
    sid(res: request.Response): string | undefined {
      const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('enamel='));
      return cookie?.split(';')[0];
    },
  };
}
