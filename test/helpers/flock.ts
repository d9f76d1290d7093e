import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/** A lock held by `flock(1)` from util-linux, the way Codex holds it: a separate process. */
export interface HeldLock {
  child: ChildProcess;
  /** Lets the holder run `then` (if any) and exit, which releases the lock. */
  release(): Promise<void>;
}

/**
 * Takes `flock -x` on `path` in a child process and resolves once it holds it.
 * `then` is a shell command the holder runs, still holding the lock, when released.
 */
export async function holdWithFlock(path: string, then = ':'): Promise<HeldLock> {
  const child = spawn('flock', ['-x', path, 'sh', '-c', `echo held; read _; ${then}`], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (out.includes('held')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`flock exited early with ${code}`)));
  });
  const exited = once(child, 'exit');
  return {
    child,
    async release() {
      child.stdin!.end('\n');
      await exited;
    },
  };
}

/** `flock -n path true`: whether another process could take the lock right now. */
export async function canLockNow(path: string): Promise<boolean> {
  const child = spawn('flock', ['-n', '-E', '75', path, 'true'], { stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0 && code !== 75) throw new Error(`flock failed with ${code}`);
  return code === 0;
}
