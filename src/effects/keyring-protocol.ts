/** Messages between the server and its keyring helper process (src/effects/keyring-helper.ts). */

/** One Secret Service item: `service`, `username` (= account) and `target` attributes. */
export interface KeyringItemId {
  service: string;
  account: string;
  target: string;
}

export type HelperRequest = KeyringItemId & { id: number } & ({ op: 'get' } | { op: 'set'; secret: string } | { op: 'delete' });

export type HelperReply =
  | {
      id: number;
      ok: true;
      /** `get`: the stored text, `null` when there is no item. */
      secret?: string | null;
      /** The item exists but its secret is not UTF-8 text (it was left alone). */
      notUtf8?: boolean;
      /** `delete`: whether an item was removed. */
      deleted?: boolean;
    }
  | {
      id: number;
      ok: false;
      /** `load`: the native module cannot load here; `connect`: no Secret Service on the bus; `call`: a D-Bus call failed. */
      stage: 'load' | 'connect' | 'call';
      /** The library's text; checked for secrets by the server before it goes anywhere. */
      message: string;
    };
