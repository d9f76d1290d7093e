import { readFileSync } from 'node:fs';
import { arch, platform, release } from 'node:os';

/** The reference server's version, which hosts see in `userAgent` (SPEC §2). */
export const SERVER_VERSION = '0.169.0';

export interface PlatformInfo {
  family: 'unix' | 'windows';
  os: 'linux' | 'macos' | 'windows';
  /** e.g. `Debian 12.0.0` */
  osLabel: string;
  /** `uname -m` style: `x86_64`, `aarch64`, `arm64`. */
  arch: string;
}

// os_info's names for the distributions a host is most likely to run on.
const DISTRO_NAMES: Record<string, string> = {
  debian: 'Debian', ubuntu: 'Ubuntu', fedora: 'Fedora', arch: 'Arch Linux', alpine: 'Alpine Linux',
  centos: 'CentOS', rhel: 'Red Hat Enterprise Linux', opensuse: 'openSUSE', 'opensuse-leap': 'openSUSE',
  'opensuse-tumbleweed': 'openSUSE', linuxmint: 'Linux Mint', manjaro: 'Manjaro', nixos: 'NixOS',
  amzn: 'Amazon Linux AMI', rocky: 'Rocky Linux', almalinux: 'AlmaLinux', pop: 'Pop!_OS', gentoo: 'Gentoo Linux',
};

/** `12` → `12.0.0`, `22.04` → `22.4.0`, as os_info prints semantic versions. */
export function padVersion(version: string): string {
  const parts = version.split('.');
  if (parts.length > 3 || !parts.every((p) => /^\d+$/.test(p))) return version;
  const nums = parts.map((p) => String(Number(p)));
  while (nums.length < 3) nums.push('0');
  return nums.join('.');
}

export function parseOsRelease(text: string): { id: string | null; versionId: string | null } {
  const get = (key: string) => {
    const m = new RegExp(`^${key}=(.*)$`, 'm').exec(text);
    return m ? m[1]!.trim().replace(/^["']|["']$/g, '') : null;
  };
  return { id: get('ID'), versionId: get('VERSION_ID') };
}

function linuxLabel(): string {
  let text = '';
  try {
    text = readFileSync('/etc/os-release', 'utf8');
  } catch {
    return 'Linux Unknown';
  }
  const { id, versionId } = parseOsRelease(text);
  const name = (id && DISTRO_NAMES[id]) ?? 'Linux';
  return `${name} ${versionId ? padVersion(versionId) : 'Unknown'}`;
}

export function detectPlatform(): PlatformInfo {
  const p = platform();
  const machine = arch() === 'x64' ? 'x86_64' : arch() === 'arm64' ? (p === 'darwin' ? 'arm64' : 'aarch64') : arch();
  if (p === 'win32') return { family: 'windows', os: 'windows', osLabel: `Windows ${release()}`, arch: machine };
  if (p === 'darwin') return { family: 'unix', os: 'macos', osLabel: `Mac OS ${padVersion(release())}`, arch: machine };
  return { family: 'unix', os: 'linux', osLabel: linuxLabel(), arch: machine };
}

/** The terminal token: `TERM_PROGRAM[/version]`, else `TERM`, else `unknown`. */
export function terminalToken(env: NodeJS.ProcessEnv): string {
  if (env.TERM_PROGRAM) return env.TERM_PROGRAM_VERSION ? `${env.TERM_PROGRAM}/${env.TERM_PROGRAM_VERSION}` : env.TERM_PROGRAM;
  if (env.TERM) return env.TERM;
  return 'unknown';
}

/** Header-safe: characters outside printable ASCII become `_`, as the reference sanitises. */
const sanitize = (value: string) => value.replace(/[^\x20-\x7e]/g, '_');

/** `<name>/<version> (<os> <os version>; <arch>) <terminal> (<name>; <client version>)` (SPEC §2). */
export function buildUserAgent(
  client: { name: string; version: string },
  platformInfo: PlatformInfo,
  env: NodeJS.ProcessEnv,
): string {
  return sanitize(
    `${client.name}/${SERVER_VERSION} (${platformInfo.osLabel}; ${platformInfo.arch}) ${terminalToken(env)} (${client.name}; ${client.version})`,
  );
}
