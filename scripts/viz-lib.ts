import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { guardName, machineGraph } from '../src/schema/machines.js';
import { VIZ_MACHINES, type VizMachine } from './viz-machines.js';

/** Files in visualizations/ by name, generated from the machines; a test keeps them in step. */
export type Visualizations = Record<string, string>;

const nodeId = (node: AnyStateNode) => (node.path.length === 0 ? node.machine.id : node.path.join('_'));

function eventLabel(eventType: string): string {
  if (eventType === '') return 'always';
  const done = /^xstate\.done\.actor\.(.+)$/.exec(eventType);
  if (done) return `done ${done[1]}`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error ${error[1]}`;
  return eventType;
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

/** `account-machine` → `Account machine`. */
function title(file: string): string {
  const words = file.replace(/-/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function mermaid({ file, machine }: VizMachine): string {
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
  lines.push('  state "(any idle mode)" as anyMode');
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
      for (const to of edge.to) lines.push(`  ${edge.from === machine.id ? 'anyMode' : edge.from} --> ${to}: ${edge.label}`);
    }
  }
  return [
    `# ${title(file)}`,
    '',
    `Generated from \`machines/${file}.ts\` by \`npm run viz\`; do not edit by hand.`,
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

/** DOT text for a quoted id or label. */
const q = (text: string) => `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;

/** The id an SVG element of a state carries, so the live page can highlight it: `account:chatgpt.idle`. */
export const svgStateId = (node: AnyStateNode) => `${node.machine.id}:${node.path.join('.')}`;

const isCompound = (node: AnyStateNode) => Object.keys(node.states).length > 0;
const clusterName = (node: AnyStateNode) => `cluster_${nodeId(node)}`;

/** The drawn node an edge to or from a compound state attaches to: its initial (or first) leaf. */
function anchor(node: AnyStateNode): AnyStateNode {
  let current = node;
  while (isCompound(current)) {
    const next = (current.initial?.target?.[0] as AnyStateNode | undefined) ?? (Object.values(current.states)[0] as AnyStateNode);
    current = next;
  }
  return current;
}

const isWithin = (node: AnyStateNode, ancestor: AnyStateNode) =>
  ancestor.path.every((key, i) => node.path[i] === key) && node.path.length >= ancestor.path.length;

/**
 * Graphviz DOT of a machine: compound and parallel states are clusters (dashed
 * for parallel regions), leaves are rounded boxes, each carrying `id`
 * `machine:path` (see `svgStateId`). Transitions with a target become edges;
 * those between the same two states share one edge with all their labels.
 * The root's handlers start at `(any state)`; in-place handlers are listed in
 * the Mermaid file's table instead.
 */
export function dot(machine: AnyStateMachine): string {
  const lines = [
    `digraph ${q(machine.id)} {`,
    '  graph [compound=true, rankdir=TB, fontname="Helvetica", fontsize=11, nodesep=0.35, ranksep=0.45, bgcolor="white", labeljust=l];',
    '  node [shape=box, style="rounded,filled", fillcolor="#f8fafc", color="#475569", fontname="Helvetica", fontsize=11, height=0.3];',
    '  edge [fontname="Helvetica", fontsize=8, color="#64748b", fontcolor="#334155", arrowsize=0.6];',
  ];
  const drawnId = (node: AnyStateNode) => q(svgStateId(node));
  const walk = (node: AnyStateNode, indent: string) => {
    if (node.initial?.target?.[0]) {
      const start = q(`${svgStateId(node)}#initial`);
      lines.push(`${indent}${start} [shape=point, width=0.09, color="#0f172a", fillcolor="#0f172a", label="", id=${start}];`);
      const target = node.initial.target[0] as AnyStateNode;
      const lhead = isCompound(target) ? `, lhead=${q(clusterName(target))}` : '';
      lines.push(`${indent}${start} -> ${drawnId(anchor(target))} [arrowsize=0.5${lhead}];`);
    }
    for (const child of Object.values(node.states) as AnyStateNode[]) {
      if (isCompound(child)) {
        lines.push(`${indent}subgraph ${q(clusterName(child))} {`);
        const style = child.type === 'parallel' ? 'dashed,rounded' : 'rounded';
        lines.push(`${indent}  id=${drawnId(child)}; label=${q(child.key)}; style=${q(style)}; color="#94a3b8"; fontcolor="#0f172a";`);
        walk(child, `${indent}  `);
        lines.push(`${indent}}`);
      } else {
        const shape = child.type === 'final' ? ', peripheries=2' : '';
        lines.push(`${indent}${drawnId(child)} [label=${q(child.key)}, id=${drawnId(child)}${shape}];`);
      }
    }
  };
  walk(machine.root, '  ');

  const anyState = q(`${machine.id}#any`);
  const edges = new Map<string, { from: AnyStateNode; to: AnyStateNode; labels: string[] }>();
  const all: AnyStateNode[] = [];
  const collect = (node: AnyStateNode) => {
    all.push(node);
    for (const child of Object.values(node.states) as AnyStateNode[]) collect(child);
  };
  collect(machine.root);
  for (const node of all) {
    const transitions = [...[...node.transitions].flatMap(([eventType, list]) => list.map((t) => ({ label: eventLabel(eventType), t }))), ...(node.always ?? []).map((t) => ({ label: 'always', t }))];
    for (const { label, t } of transitions) {
      for (const target of (t.target ?? []) as AnyStateNode[]) {
        const key = `${node.id} -> ${target.id}`;
        const edge = edges.get(key) ?? { from: node, to: target, labels: [] };
        edge.labels.push(label + guardLabel(t.guard));
        edges.set(key, edge);
      }
    }
  }
  if ([...edges.values()].some((e) => e.from === machine.root)) {
    lines.push(`  ${anyState} [label="(any state)", shape=plaintext, style="", id=${anyState}];`);
  }
  for (const { from, to, labels } of edges.values()) {
    const attrs = [`label=${q(labels.join('\n'))}`];
    const tail = from === machine.root ? anyState : drawnId(anchor(from));
    if (from !== machine.root && isCompound(from) && !isWithin(to, from)) attrs.push(`ltail=${q(clusterName(from))}`);
    if (isCompound(to) && !isWithin(from, to)) attrs.push(`lhead=${q(clusterName(to))}`);
    lines.push(`  ${tail} -> ${drawnId(anchor(to))} [${attrs.join(', ')}];`);
  }
  lines.push('}', '');
  return lines.join('\n');
}

/** Renders DOT to SVG with Graphviz compiled to WebAssembly (@viz-js/viz): local, no network, no native build. */
async function svg(machine: AnyStateMachine): Promise<string> {
  const { instance } = await import('@viz-js/viz');
  const viz = await instance();
  const result = viz.render(dot(machine), { format: 'svg' });
  if (result.status !== 'success') throw new Error(`graphviz failed for ${machine.id}: ${result.errors.map((e) => e.message).join('; ')}`);
  return result.output;
}

/** Every file of visualizations/ for the given machines (all of them by default). */
export async function renderVisualizations(machines: readonly VizMachine[] = VIZ_MACHINES): Promise<Visualizations> {
  const files: Visualizations = {};
  for (const entry of machines) {
    files[`${entry.file}.json`] = `${JSON.stringify(machineGraph(entry.machine), null, 2)}\n`;
    files[`${entry.file}.md`] = mermaid(entry);
    files[`${entry.file}.svg`] = await svg(entry.machine);
  }
  return files;
}
