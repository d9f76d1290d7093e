import type { ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import type { HelperReply, HelperRequest, KeyringItemId } from './keyring-protocol.js';

/** Why a keyring call failed, before the store words it for a person. */
export class KeyringFailure extends Error {
  constructor(
    /** `load`/`connect`/`call` as the helper reports them; `timeout` when the deadline passed. */
    readonly stage: 'load' | 'connect' | 'call' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'KeyringFailure';
  }
}

export interface KeyringClient {
  /** The item's secret; `null` when there is none. `notUtf8` when it holds bytes that are not text. */
  get(item: KeyringItemId): Promise<{ secret: string | null; notUtf8: boolean }>;
  /** Creates the item or updates it in place. `notUtf8` when an unreadable item was left alone. */
  set(item: KeyringItemId, secret: string): Promise<{ notUtf8: boolean }>;
  /** Removes the item (and a legacy one without `target`); `true` when one existed. */
  delete(item: KeyringItemId): Promise<boolean>;
}

export interface KeyringClientOptions {
  /** dist/keyring-helper.cjs. */
  helperPath: string;
  /** Deadline of each call; past it the helper is killed and the call fails with stage `timeout`. */
  timeoutMs: number;
  /** Environment of the helper (the D-Bus address comes from it); the server's own by default. */
  env?: NodeJS.ProcessEnv;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

// Helpers still running when the server exits are killed: one stuck in a D-Bus
// connect would not notice its parent is gone.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

/**
 * Talks to the keyring helper process, started on first use and again after
 * it was killed. Calls run one at a time in the helper; each has its own
 * deadline, so a hanging D-Bus costs a request `timeoutMs`, never the server.
 */
export function createKeyringClient({ helperPath, timeoutMs, env = process.env }: KeyringClientOptions): KeyringClient {
  let child: ChildProcess | null = null;
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: HelperReply & { ok: true }) => void; reject: (e: KeyringFailure) => void; timer: NodeJS.Timeout }>();

  const failAll = (failure: KeyringFailure) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(failure);
    }
  };

  const stop = (target: ChildProcess) => {
    live.delete(target);
    if (child === target) child = null;
    if (target.exitCode === null && target.signalCode === null) target.kill('SIGKILL');
  };

  const idle = (target: ChildProcess) => {
    // An idle helper must not keep the server alive; a busy one must.
    if (pending.size === 0) {
      target.unref();
      target.channel?.unref();
    } else {
      target.ref();
      target.channel?.ref();
    }
  };

  const start = (): ChildProcess => {
    installExitHook();
    // node:child_process is required on first use, not when the server loads (~2 ms there):
    // the file store never starts a helper.
    const { fork } = createRequire(__filename)('node:child_process') as typeof import('node:child_process');
    const started = fork(helperPath, [], {
      env,
      execArgv: [],
      serialization: 'json',
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    live.add(started);
    started.on('message', (reply: HelperReply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      clearTimeout(p.timer);
      if (reply.ok) p.resolve(reply);
      else p.reject(new KeyringFailure(reply.stage, reply.message));
      idle(started);
    });
    started.on('error', (error) => {
      stop(started);
      failAll(new KeyringFailure('load', `the keyring helper could not run: ${error.message}`));
    });
    started.on('exit', (code, signal) => {
      live.delete(started);
      if (child === started) {
        child = null;
        failAll(new KeyringFailure('load', `the keyring helper exited (${signal ?? `code ${code}`})`));
      }
    });
    return started;
  };

  const call = (request: DistributiveOmit<HelperRequest, 'id'>): Promise<HelperReply & { ok: true }> =>
    new Promise((resolve, reject) => {
      const target = (child ??= start());
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new KeyringFailure('timeout', `the Secret Service did not answer within ${timeoutMs} ms`));
        // Whatever it is stuck in, it is stuck for the calls behind it too.
        stop(target);
        failAll(new KeyringFailure('timeout', `the Secret Service did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer });
      idle(target);
      target.send({ ...request, id } satisfies HelperRequest, (error) => {
        if (error) target.emit('error', error);
      });
    });

  return {
    async get(item) {
      const reply = await call({ ...item, op: 'get' });
      return { secret: reply.secret ?? null, notUtf8: reply.notUtf8 === true };
    },
    async set(item, secret) {
      const reply = await call({ ...item, op: 'set', secret });
      return { notUtf8: reply.notUtf8 === true };
    },
    async delete(item) {
      const reply = await call({ ...item, op: 'delete' });
      return reply.deleted === true;
    },
  };
}
