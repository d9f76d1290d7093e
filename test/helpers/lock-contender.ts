// A second process contending for auth.lock: `node --import tsx lock-contender.ts <home> <rounds>`.
// Each round is a read-modify-write of `counter` under the lock with a pause in
// the middle, so any two writers that overlap would lose an update.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withAuthLock } from '../../src/effects/lock.js';

const [home, rounds] = process.argv.slice(2) as [string, string];
const counter = join(home, 'counter');
for (let i = 0; i < Number(rounds); i++) {
  await withAuthLock(home, async () => {
    const value = Number(readFileSync(counter, 'utf8'));
    await sleep(2);
    writeFileSync(counter, String(value + 1));
  });
}
