import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { toDirectedGraph, type DirectedGraphNode } from 'xstate/graph';
import { accountMachine } from '../../machines/account-machine.js';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import { sessionMachine } from '../../machines/session-machine.js';

/** A machine with generated diagrams and an exported graph: `file` names its outputs and its source in machines/. */
export interface VizMachine {
  file: string;
  machine: AnyStateMachine;
}

/**
 * Every machine of the actor system, root first. `npm run viz` draws each
 * (visualizations/), `generate-json-schema` exports each graph, and the live
 * page embeds each SVG (src/inspect/diagrams.ts: add a line there too).
 */
export const VIZ_MACHINES: readonly VizMachine[] = [
  { file: 'account-machine', machine: accountMachine },
  { file: 'session-machine', machine: sessionMachine },
  { file: 'login-attempt-machine', machine: loginAttemptMachine },
];

/** A guard's name as the diagrams show it (`null` when there is none). */
export function guardName(guard: unknown): string | null {
  if (!guard) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'object' && 'type' in guard) return String(guard.type);
  return 'guard';
}

/** One state of a machine graph, its transitions and its children. */
export interface MachineGraph {
  id: string;
  type: string;
  initial?: string;
  tags: string[];
  invoke: Array<{ id: string; src: string }>;
  edges: Array<{ source: string; target: string; inPlace: boolean; event: string; guard: string | null }>;
  children: MachineGraph[];
}

/**
 * `toDirectedGraph` output as plain data: functions and state-node objects are
 * dropped, each edge keeps its guard's name, and the eventless (`always`)
 * edges, which `toDirectedGraph` leaves out, are added with event `""`.
 */
function graphJson(graph: DirectedGraphNode): MachineGraph {
  const node = graph.stateNode as AnyStateNode;
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

/** A machine's states and transitions as JSON (what visualizations/<file>.json holds). */
export function machineGraph(machine: AnyStateMachine): MachineGraph {
  return graphJson(toDirectedGraph(machine));
}

/** Every state of a machine as a dotted path (`credentials.chatgptSession.chatgpt`), parents before children. */
export function statePaths(machine: AnyStateMachine): string[] {
  const walk = (node: AnyStateNode): string[] =>
    Object.values(node.states).flatMap((child) => [child.path.join('.'), ...walk(child as AnyStateNode)]);
  return walk(machine.root);
}
