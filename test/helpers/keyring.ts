import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The unlock password of the test keyring; it protects nothing but throwaway items. */
const KEYRING_PASSWORD = 'test-keyring-password';

/** The `cli_auth_credentials_store` item attributes Codex writes and searches by (SPEC §5.1). */
export const CODEX_SERVICE = 'Codex Auth';

/**
 * A private D-Bus session bus, optionally with an unlocked gnome-keyring
 * (Secret Service) on it. Both daemons are children of the test process and are
 * stopped by pid in `stop()`. The bus has no service directories, so nothing is
 * ever auto-started behind the test's back.
 */
export class PrivateKeyring {
  readonly dir: string;
  readonly address: string;
  readonly #bus: ChildProcess;
  #keyring: ChildProcess | null = null;

  private constructor(dir: string, address: string, bus: ChildProcess) {
    this.dir = dir;
    this.address = address;
    this.#bus = bus;
  }

  /** Starts the bus and, unless `keyring: false`, an unlocked gnome-keyring on it. */
  static async start({ keyring = true }: { keyring?: boolean } = {}): Promise<PrivateKeyring> {
    const dir = mkdtempSync(join(tmpdir(), 'cas-keyring-'));
    const config = join(dir, 'bus.conf');
    writeFileSync(
      config,
      `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=${join(dir, 'bus')}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`,
    );
    const bus = spawn('dbus-daemon', ['--nofork', `--config-file=${config}`, '--print-address=1'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const address = await firstLine(bus, 'dbus-daemon');
    const env = new PrivateKeyring(dir, address, bus);
    if (keyring) await env.startKeyring();
    return env;
  }

  /** Environment for a process that should see this bus (and nothing of the real user's). */
  get env(): Record<string, string> {
    return {
      DBUS_SESSION_BUS_ADDRESS: this.address,
      HOME: join(this.dir, 'home'),
      XDG_DATA_HOME: join(this.dir, 'data'),
      XDG_RUNTIME_DIR: join(this.dir, 'run'),
    };
  }

  /** gnome-keyring with only the Secret Service, unlocked with the password on stdin. */
  async startKeyring(): Promise<void> {
    for (const sub of ['home', 'data', 'run']) mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o700 });
    const child = spawn('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets'], {
      env: { ...process.env, ...this.env },
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.#keyring = child;
    child.stdin!.end(KEYRING_PASSWORD);
    // Registered once the name is owned on the bus.
    const deadline = Date.now() + 10_000;
    while (!(await this.hasSecretService())) {
      if (child.exitCode !== null) throw new Error(`gnome-keyring-daemon exited with ${child.exitCode}`);
      if (Date.now() > deadline) throw new Error('gnome-keyring-daemon did not register on the bus');
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Whether `org.freedesktop.secrets` is on the bus now. */
  async hasSecretService(): Promise<boolean> {
    const { stdout } = await this.dbus('/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', 'string:org.freedesktop.secrets', 'org.freedesktop.DBus');
    return /boolean true/.test(stdout);
  }

  /** Locks the default collection, as a screen lock or `secret-tool lock` would. */
  async lock(): Promise<void> {
    await this.dbus(
      '/org/freedesktop/secrets',
      'org.freedesktop.Secret.Service.Lock',
      'array:objpath:/org/freedesktop/secrets/collection/login',
    );
  }

  /** Stops the keyring daemon (SIGSTOP) so calls to it hang; `resume()` undoes it. */
  freezeKeyring(): void {
    this.#keyring?.kill('SIGSTOP');
  }

  resumeKeyring(): void {
    this.#keyring?.kill('SIGCONT');
  }

  /** `secret-tool store`: writes an item with exactly these attributes, as Codex (keyring-rs) does. */
  async store(label: string, attributes: Record<string, string>, secret: string): Promise<void> {
    await this.secretTool(['store', `--label=${label}`, ...Object.entries(attributes).flat()], secret);
  }

  /** `secret-tool lookup`: the secret of the item with these attributes, or `null`. */
  async lookup(attributes: Record<string, string>): Promise<string | null> {
    try {
      return (await this.secretTool(['lookup', ...Object.entries(attributes).flat()])).stdout;
    } catch {
      return null; // exit 1: no such item
    }
  }

  /** `secret-tool search --all`: every matching item, with label and attributes. */
  async search(attributes: Record<string, string>): Promise<KeyringItem[]> {
    // secret-tool prints attributes on stderr and the rest on stdout: one stream keeps them in order.
    const { stdout } = await this.secretTool(['search', '--all', ...Object.entries(attributes).flat()], '', true);
    return parseSearch(stdout);
  }

  async stop(): Promise<void> {
    for (const child of [this.#keyring, this.#bus]) {
      if (child === null || child.exitCode !== null || child.signalCode !== null) continue;
      child.kill('SIGCONT');
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await exited;
      clearTimeout(timer);
    }
    this.#keyring = null;
  }

  private secretTool(args: string[], input = '', mergeStderr = false): Promise<{ stdout: string; stderr: string }> {
    const [file, argv] = mergeStderr ? ['sh', ['-c', 'exec secret-tool "$@" 2>&1', 'secret-tool', ...args]] : ['secret-tool', args];
    return new Promise((resolve, reject) => {
      const child = execFile(file, argv as string[], { env: { ...process.env, ...this.env }, timeout: 10_000 }, (error, stdout, stderr) =>
        error ? reject(Object.assign(error, { stderr })) : resolve({ stdout, stderr }),
      );
      child.stdin!.end(input);
    });
  }

  private dbus(path: string, method: string, arg: string, dest = 'org.freedesktop.secrets') {
    return run('dbus-send', ['--session', '--print-reply', `--dest=${dest}`, path, method, arg], {
      env: { ...process.env, ...this.env },
      timeout: 10_000,
    });
  }
}

export interface KeyringItem {
  label: string;
  secret: string;
  attributes: Record<string, string>;
}

function parseSearch(text: string): KeyringItem[] {
  const items: KeyringItem[] = [];
  let current: KeyringItem | null = null;
  for (const line of text.split('\n')) {
    if (/^\[\/.*\]$/.test(line)) {
      current = { label: '', secret: '', attributes: {} };
      items.push(current);
      continue;
    }
    const match = /^(\S+) = (.*)$/.exec(line);
    if (!match || current === null) continue;
    const [, key, value] = match as unknown as [string, string, string];
    if (key === 'label') current.label = value;
    else if (key === 'secret') current.secret = value;
    else if (key.startsWith('attribute.')) current.attributes[key.slice('attribute.'.length)] = value;
  }
  return items;
}

function firstLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl === -1) return;
      child.stdout!.off('data', onData);
      resolve(out.slice(0, nl).trim());
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before printing its address`)));
  });
}

/**
 * A Unix socket that accepts connections and never answers: a D-Bus that hangs.
 * `address` is a `DBUS_SESSION_BUS_ADDRESS` pointing at it.
 */
export async function hangingBus(): Promise<{ address: string; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'cas-hang-'));
  const path = join(dir, 'bus');
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    address: `unix:path=${path}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
