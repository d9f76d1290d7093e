import type { AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { accountMachine } from '../machines/account-machine.js';

/** Files in visualizations/, generated from the machine; a test keeps them in step. */
export interface Visualizations {
  'account-machine.json': string;
  'account-machine.md': string;
}

const nodeId = (node: AnyStateNode) => (node.path.length === 0 ? 'account' : node.path.join('_'));

function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `done ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error ${error[1]}`;
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

function mermaid(): string {
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
  walk(accountMachine.root, '  ');
  lines.push('  state "(any idle mode)" as anyMode');
  const all: AnyStateNode[] = [];
  const collect = (node: AnyStateNode) => {
    all.push(node);
    for (const child of Object.values(node.states) as AnyStateNode[]) collect(child);
  };
  collect(accountMachine.root);
  for (const node of all) {
    for (const edge of transitionsOf(node)) {
      if (edge.to.length === 0) handledInPlace.push(`| ${edge.from} | ${edge.label.replace(/\|/g, '\\|')} |`);
      // The root's handlers apply in every idle mode; one pseudo-state stands for all of them.
      for (const to of edge.to) lines.push(`  ${edge.from === 'account' ? 'anyMode' : edge.from} --> ${to}: ${edge.label}`);
    }
  }
  return [
    '# Account machine',
    '',
    'Generated from `machines/account-machine.ts` by `npm run viz`; do not edit by hand.',
    'Edges from `(any idle mode)` are the machine-wide handlers: they apply in every idle mode.',
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
    'account-machine.md': mermaid(),
  };
}
