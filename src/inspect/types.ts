import type { InspectionEvent } from 'xstate';

/**
 * One line of JSON-RPC traffic as the inspectors show it: method, id and
 * timing only. Params and results never get here (they hold keys and tokens).
 */
export type RpcTrace =
  | { dir: 'in'; kind: 'request'; method: string; id: string }
  | { dir: 'out'; kind: 'response'; method: string; id: string; ms: number; errorCode: number | null }
  | { dir: 'out'; kind: 'notification'; method: string };

/**
 * What the adapter feeds the inspectors. `startServer` takes both as options
 * (`inspect` goes to `createActor`, `rpcTrace` is called on each request,
 * response and notification); everything passes one redactor before it
 * leaves the process.
 */
export interface InspectSink {
  inspect(event: InspectionEvent): void;
  rpc(trace: RpcTrace): void;
}
