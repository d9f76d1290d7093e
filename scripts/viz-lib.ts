import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { accountMachine } from '../machines/account-machine.js';
import { loginAttemptMachine } from '../machines/login-attempt-machine.js';

/** Files in visualizations/, generated from the machines; a test keeps them in step. */
export interface Visualizations {
  'account-machine.json': string;
  'account-machine.md': string;
  'login-attempt-machine.json': string;
  'login-attempt-machine.md': string;
}

const nodeId = (node: AnyStateNode) => (node.path.length === 0 ? node.machine.id : node.path.join('_'));

function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `done ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error ${error[1]}`;
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return `after ${after[1]}`;
  return eventType;
}

function guardName(guard: unknown): string | null {
  if (!guard) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard) return String(guard.type);
  return 'guard';
}

function guardLabel(guard: unknown): string {
  const name = guardName(guard);
  return name === null ? '' : ` [${name}]`;
}

interface Edge {
  from: string;
  to: string[];
  label: string;
}

function transitionsOf(node: AnyStateNode): Edge[] {
  const edges: Edge[] = [];
  for (const [eventType, list] of node.transitions) {
    for (const t of list) {
      edges.push({ from: nodeId(node), to: (t.target ?? []).map(nodeId), label: eventLabel(eventType) + guardLabel(t.guard) });
    }
  }
  for (const t of node.always ?? []) {
    edges.push({ from: nodeId(node), to: (t.target ?? []).map(nodeId), label: 'always' + guardLabel(t.guard) });
  }
  return edges;
}

interface Diagram {
  machine: AnyStateMachine;
  title: string;
  source: string;
  /** What the root's own handlers mean in this machine. */
  rootNote: string;
}

function mermaid({ machine, title, source, rootNote }: Diagram): string {
  const lines = ['stateDiagram-v2'];
  const handledInPlace: string[] = [];
  const walk = (node: AnyStateNode, indent: string) => {
    const children = Object.values(node.states) as AnyStateNode[];
    if (node.initial?.target?.[0]) lines.push(`${indent}[*] --> ${nodeId(node.initial.target[0])}`);
    for (const child of children) {
      lines.push(`${indent}state "${child.key}" as ${nodeId(child)}`);
      if (Object.keys(child.states).length > 0) {
        lines.push(`${indent}state ${nodeId(child)} {`);
        walk(child, `${indent}  `);
        lines.push(`${indent}}`);
      }
    }
  };
  walk(machine.root, '  ');
  const rootId = nodeId(machine.root);
  const rootEdges = transitionsOf(machine.root).some((e) => e.to.length > 0);
  if (rootEdges) lines.push('  state "(any idle mode)" as anyMode');
  const all: AnyStateNode[] = [];
  const collect = (node: AnyStateNode) => {
    all.push(node);
    for (const child of Object.values(node.states) as AnyStateNode[]) collect(child);
  };
  collect(machine.root);
  for (const node of all) {
    for (const edge of transitionsOf(node)) {
      if (edge.to.length === 0) handledInPlace.push(`| ${edge.from} | ${edge.label.replace(/\|/g, '\\|')} |`);
      // The root's handlers apply in every idle mode; one pseudo-state stands for all of them.
      for (const to of edge.to) lines.push(`  ${edge.from === rootId ? 'anyMode' : edge.from} --> ${to}: ${edge.label}`);
    }
  }
  return [
    `# ${title}`,
    '',
    `Generated from \`${source}\` by \`npm run viz\`; do not edit by hand.`,
    ...(rootNote ? [rootNote] : []),
    '',
    '```mermaid',
    ...lines,
    '```',
    '',
    '## Events answered without a state change',
    '',
    '| state | event [guard] |',
    '|---|---|',
    ...handledInPlace,
    '',
  ].join('\n');
}

/**
 * `toDirectedGraph` output as plain data: functions and state-node objects are
 * dropped, each edge keeps its guard's name, and the eventless (`always`)
 * edges, which `toDirectedGraph` leaves out, are added with event `""`.
 */
function graphJson(graph: DirectedGraphNode): unknown {
  const node = graph.stateNode;
  const edges = [
    ...graph.edges.map((e) => ({
      source: e.source.id,
      // toDirectedGraph points a targetless transition at its own node; `inPlace` says so.
      target: e.target.id,
      inPlace: !e.transition.target,
      event: e.label.text,
      guard: guardName(e.transition.guard),
    })),
    ...(node.always ?? []).flatMap((t) =>
      (t.target ?? []).map((target) => ({ source: node.id, target: target.id, inPlace: false, event: '', guard: guardName(t.guard) })),
    ),
  ];
  return {
    id: graph.id,
    type: node.type,
    ...(node.initial?.target?.[0] ? { initial: node.initial.target[0].id } : {}),
    tags: [...node.tags].sort(),
    invoke: node.invoke.map((i) => ({ id: i.id, src: typeof i.src === 'string' ? i.src : i.id })),
    edges,
    children: graph.children.map(graphJson),
  };
}

export function renderVisualizations(): Visualizations {
  return {
    'account-machine.json': `${JSON.stringify(graphJson(toDirectedGraph(accountMachine)), null, 2)}\n`,
    'account-machine.md': mermaid({
      machine: accountMachine,
      title: 'Account machine',
      source: 'machines/account-machine.ts',
      rootNote: 'Edges from `(any idle mode)` are the machine-wide handlers: they apply in every idle mode.',
    }),
    'login-attempt-machine.json': `${JSON.stringify(graphJson(toDirectedGraph(loginAttemptMachine)), null, 2)}\n`,
    'login-attempt-machine.md': mermaid({
      machine: loginAttemptMachine,
      title: 'Login attempt machine',
      source: 'machines/login-attempt-machine.ts',
      rootNote: 'One browser or device-code sign-in; the channel (callback server or device poller) lives in `open`.',
    }),
  };
}
