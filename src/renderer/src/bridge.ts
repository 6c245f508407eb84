import type { BridgeError, BridgeMethod, BridgeMethods, KuzetApi } from '../../shared/bridge.js';
import { BRIDGE_VERSION } from '../../shared/bridge.js';

export class BridgeCallError extends Error {
  constructor(readonly error: BridgeError) { super(error.message); }
}

/** The preload's `window.kuzet`, checked for the contract version this UI was built against. */
export function bridge(): KuzetApi {
  const k = window.kuzet;
  if (!k) throw new BridgeCallError({ code: 'NO_BRIDGE', message: 'The kiosk bridge (window.kuzet) is missing: the preload did not run.' });
  if (k.bridgeVersion !== BRIDGE_VERSION) {
    throw new BridgeCallError({ code: 'BRIDGE_VERSION', message: `Bridge version ${k.bridgeVersion} does not match the UI's ${BRIDGE_VERSION}.` });
  }
  return k;
}

/** Calls a bridge method and unwraps its result (a failure becomes a BridgeCallError carrying the code). */
export async function call<M extends BridgeMethod>(m: M, ...args: BridgeMethods[M]['args']): Promise<BridgeMethods[M]['result']> {
  const fn = bridge()[m] as (...a: BridgeMethods[M]['args']) => ReturnType<KuzetApi[M]>;
  const r = await fn(...args);
  if (!r.ok) throw new BridgeCallError(r.error);
  return r.value as BridgeMethods[M]['result'];
}

export function errorOf(e: unknown): BridgeError {
  if (e instanceof BridgeCallError) return e.error;
  return { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) };
}
