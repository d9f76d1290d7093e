import { afterEach, describe, expect, it } from 'vitest';
import { ServerProcess } from '../helpers/server-process.js';

describe('smoke', () => {
  let server: ServerProcess | undefined;
  afterEach(() => server?.kill());

  it('answers initialize and a first account/read over stdio', async () => {
    server = ServerProcess.start();
    const init = await server.initialize();
    expect(init.result).toMatchObject({ codexHome: server.home, platformFamily: 'unix' });
    const read = await server.request('account/read', {});
    expect(read).toEqual({ id: 2, result: { account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null } });
    expect(server.badLines).toEqual([]);
  });
});
