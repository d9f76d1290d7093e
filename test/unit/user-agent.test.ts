import { describe, expect, it } from 'vitest';
import { buildUserAgent, padVersion, parseOsRelease, terminalToken, type PlatformInfo } from '../../src/user-agent.js';

const debian: PlatformInfo = { family: 'unix', os: 'linux', osLabel: 'Debian 12.0.0', arch: 'x86_64' };

describe('user agent', () => {
  it('pads OS versions to three parts as the reference prints them', () => {
    expect(padVersion('12')).toBe('12.0.0');
    expect(padVersion('22.04')).toBe('22.4.0');
    expect(padVersion('1.2.3')).toBe('1.2.3');
    expect(padVersion('rolling')).toBe('rolling');
  });

  it('reads ID and VERSION_ID from os-release, quoted or not', () => {
    expect(parseOsRelease('NAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n')).toEqual({ id: 'debian', versionId: '12' });
    expect(parseOsRelease('ID=arch\n')).toEqual({ id: 'arch', versionId: null });
  });

  it('prefers TERM_PROGRAM with its version over TERM', () => {
    expect(terminalToken({ TERM_PROGRAM: 'vscode', TERM_PROGRAM_VERSION: '1.95.0', TERM: 'xterm' })).toBe('vscode/1.95.0');
    expect(terminalToken({ TERM: 'xterm' })).toBe('xterm');
    expect(terminalToken({})).toBe('unknown');
  });

  it('formats name/version (os; arch) terminal (name; client version)', () => {
    expect(buildUserAgent({ name: 'my-app', version: '1.0.0' }, debian, { TERM: 'xterm' })).toBe(
      'my-app/0.169.0 (Debian 12.0.0; x86_64) xterm (my-app; 1.0.0)',
    );
  });

  it('replaces characters a header cannot carry with underscores', () => {
    expect(buildUserAgent({ name: 'app\u00e9', version: '1\n' }, debian, { TERM: 'xterm' })).toBe(
      'app_/0.169.0 (Debian 12.0.0; x86_64) xterm (app_; 1_)',
    );
  });
});
