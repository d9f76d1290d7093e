/**
 * The keyring helper: a child process (dist/keyring-helper.cjs) that owns
 * `@napi-rs/keyring` and answers get/set/delete requests over the IPC channel.
 *
 * Why a process of its own: creating a Secret Service entry connects to D-Bus
 * synchronously inside the native module. A keyring daemon that hangs blocks
 * that call for ~2 s, and a bus socket that never answers blocks it for ever,
 * freezing whichever event loop made it. Here only this process freezes; the
 * server's deadline kills it by pid and starts a fresh one for the next call.
 *
 * Nothing here logs: secrets pass through, and stdout/stderr are not read.
 */
import type { HelperReply, HelperRequest } from './keyring-protocol.js';

type Keyring = typeof import('@napi-rs/keyring');
type AsyncEntry = InstanceType<Keyring['AsyncEntry']>;

let keyring: Keyring | { error: string } | undefined;

function loadKeyring(): Keyring | { error: string } {
  if (keyring === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      keyring = require('@napi-rs/keyring') as Keyring;
    } catch (error) {
      keyring = { error: (error as Error).message.split('\n')[0] ?? 'cannot load' };
    }
  }
  return keyring;
}

class StageError extends Error {
  constructor(
    readonly stage: 'load' | 'connect',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Pinned to the Secret Service: without the option the library silently falls
 * back to the kernel keyring, where Codex never looks (issue 11).
 */
function entry(service: string, account: string, target: string | null): AsyncEntry {
  const lib = loadKeyring();
  if ('error' in lib) throw new StageError('load', lib.error);
  const options = { linux: { store: 'secret-service' as const } };
  try {
    return target === null ? new lib.AsyncEntry(service, account, options) : lib.AsyncEntry.withTarget(target, service, account, options);
  } catch (error) {
    throw new StageError('connect', (error as Error).message);
  }
}

const strict = new TextDecoder('utf-8', { fatal: true });

/** The secret as text; `undefined` when it is not UTF-8 (reported as a corrupt item, never echoed). */
async function readSecret(e: AsyncEntry): Promise<string | null | undefined> {
  const bytes = await e.getSecret();
  if (bytes === null) return null;
  try {
    return strict.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The item Codex reads: the one with `target="default"`, else a legacy one with
 * only `service` and `username` (SPEC §5.1). Writes update whichever exists, in
 * place, so the two programs keep sharing one item.
 */
async function locate(req: HelperRequest): Promise<{ entry: AsyncEntry; secret: string | null | undefined }> {
  const targeted = entry(req.service, req.account, req.target);
  const secret = await readSecret(targeted);
  if (secret !== null) return { entry: targeted, secret };
  const legacy = entry(req.service, req.account, null);
  const legacySecret = await readSecret(legacy);
  return legacySecret === null ? { entry: targeted, secret: null } : { entry: legacy, secret: legacySecret };
}

async function handle(req: HelperRequest): Promise<HelperReply> {
  try {
    switch (req.op) {
      case 'get': {
        const { secret } = await locate(req);
        return secret === undefined ? { id: req.id, ok: true, notUtf8: true, secret: null } : { id: req.id, ok: true, secret };
      }
      case 'set': {
        const found = await locate(req);
        // Never overwrite an item we cannot read: the caller decides (issue 11, bad input).
        if (found.secret === undefined) return { id: req.id, ok: true, notUtf8: true, secret: null };
        await found.entry.setPassword(req.secret);
        return { id: req.id, ok: true, secret: null };
      }
      case 'delete': {
        let deleted = await entry(req.service, req.account, req.target).deleteCredential();
        // A legacy item without `target` is found by Codex too: remove it as well.
        deleted = (await entry(req.service, req.account, null).deleteCredential()) || deleted;
        return { id: req.id, ok: true, deleted };
      }
    }
  } catch (error) {
    const stage = error instanceof StageError ? error.stage : 'call';
    return { id: req.id, ok: false, stage, message: (error as Error).message };
  }
}

// One request at a time: a write's look-up and update belong together.
let queue: Promise<unknown> = Promise.resolve();
process.on('message', (req: HelperRequest) => {
  queue = queue.then(async () => process.send?.(await handle(req)));
});
// The server went away (even if it was killed): nobody is left to answer.
process.on('disconnect', () => process.exit(0));
