import { readFileSync } from 'node:fs';
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import type { TraceLine } from '../../src/inspect/transition-trace.js';

/**
 * What "every transition" means here (docs/proof.md): one transition per
 * guarded candidate of every event a state node declares (`on`, invoke
 * `onDone`/`onError`, `after`) and per candidate of its `always`, taken from
 * the machine definition itself, so a renamed state, event or invoke id, or a
 * new candidate, changes the list and cannot drop coverage silently.
 */
export interface Transition {
  machine: string;
  /** `<source state id> on <event descriptor | always> #<candidate index>`: what the trace lines name. */
  key: string;
  /** The key with its targets, for people. */
  label: string;
}

/** The key of a trace line, as `transitionsOf` names the same transition. */
export const keyOf = (line: Pick<TraceLine, 'source' | 'on' | 'index'>) => `${line.source} on ${line.on === '' ? 'always' : line.on} #${line.index}`;

const nodesOf = (machine: AnyStateMachine): AnyStateNode[] => [machine.root, ...getStateNodes(machine.root)];

/** Every transition the definition of `machine` declares. */
export function transitionsOf(machine: AnyStateMachine): Transition[] {
  const out: Transition[] = [];
  const add = (node: AnyStateNode, on: string, index: number, targets: readonly AnyStateNode[] | undefined) => {
    const key = keyOf({ source: node.id, on, index });
    const to = targets && targets.length > 0 ? targets.map((t) => t.id).join(', ') : '(stays)';
    out.push({ machine: machine.id, key, label: `${key} → ${to}` });
  };
  for (const node of nodesOf(machine)) {
    for (const [on, candidates] of node.transitions) candidates.forEach((t, i) => add(node, on, i, t.target));
    (node.always ?? []).forEach((t, i) => add(node, '', i, t.target));
  }
  return out;
}

/** Every state node id of `machine`, its root included. */
export const statesOf = (machine: AnyStateMachine): string[] => nodesOf(machine).map((n) => n.id);

/** A node, its ancestors, and what entering it enters by default (initial children, every region). */
function entered(node: AnyStateNode, into: Set<string>): void {
  for (let n: AnyStateNode | undefined = node; n; n = n.parent) into.add(n.id);
  const enterDown = (n: AnyStateNode) => {
    into.add(n.id);
    if (n.type === 'parallel') for (const child of Object.values(n.states)) enterDown(child);
    else if (n.type === 'compound') for (const t of n.initial.target) enterDown(t);
  };
  enterDown(node);
}

/** The state nodes a trace shows `machine` in: its initial configuration, then every target entered. */
export function statesSeen(machine: AnyStateMachine, lines: TraceLine[]): Set<string> {
  const seen = new Set<string>();
  const mine = lines.filter((l) => l.machine === machine.id);
  if (mine.length === 0) return seen;
  entered(machine.root, seen);
  for (const line of mine) {
    seen.add(line.source);
    for (const target of line.targets) entered(machine.getStateNodeById(target), seen);
  }
  return seen;
}

/** The trace a server wrote (`CODEX_ACCOUNT_SERVER_TRACE_TRANSITIONS`), line by line. */
export function readTrace(path: string): TraceLine[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as TraceLine);
}

/** One row of the printed table. */
export interface CoverageRow {
  machine: string;
  states: [seen: number, all: number];
  /** Transitions the traces show. */
  taken: [seen: number, all: number];
  /** Taken or excluded (with a reason): what must reach 100 %. */
  transitions: [seen: number, all: number];
  excluded: number;
  missing: string[];
  unseenStates: string[];
}

const pct = ([a, b]: [number, number]) => `${((100 * a) / b).toFixed(1)} %`;

/** The coverage of each machine by the trace lines, against its definition, less the justified exclusions. */
export function coverage(machines: AnyStateMachine[], lines: TraceLine[], exclusions: Record<string, string>): CoverageRow[] {
  return machines.map((machine) => {
    const all = transitionsOf(machine);
    const taken = new Set(lines.filter((l) => l.machine === machine.id).map(keyOf));
    const excluded = all.filter((t) => `${t.machine}: ${t.key}` in exclusions);
    const seenCount = all.filter((t) => taken.has(t.key)).length;
    const states = statesOf(machine);
    const seen = statesSeen(machine, lines);
    return {
      machine: machine.id,
      states: [states.filter((s) => seen.has(s)).length, states.length],
      taken: [seenCount, all.length],
      transitions: [seenCount + excluded.length, all.length],
      excluded: excluded.length,
      missing: all.filter((t) => !taken.has(t.key) && !excluded.includes(t)).map((t) => t.label),
      unseenStates: states.filter((s) => !seen.has(s)),
    };
  });
}

/** The coverage table as printed by the replay test. */
export function formatCoverage(rows: CoverageRow[], exclusions: Record<string, string>): string {
  const lines = [
    'machine        states entered   transitions taken   excluded   taken + excluded',
    ...rows.map(
      (r) =>
        `${r.machine.padEnd(14)} ${`${r.states[0]}/${r.states[1]} ${pct(r.states)}`.padEnd(16)} ` +
        `${`${r.taken[0]}/${r.taken[1]} ${pct(r.taken)}`.padEnd(19)} ${String(r.excluded).padEnd(10)} ` +
        `${r.transitions[0]}/${r.transitions[1]} ${pct(r.transitions)}`,
    ),
  ];
  const entries = Object.entries(exclusions);
  if (entries.length > 0) {
    lines.push('excluded (cannot be caused from outside the process):');
    for (const [key, why] of entries) lines.push(`  ${key}: ${why}`);
  }
  for (const r of rows) for (const m of r.missing) lines.push(`  MISSING ${r.machine}: ${m}`);
  return lines.join('\n');
}
