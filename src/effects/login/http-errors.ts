import { STATUS_CODES } from 'node:http';

/** `400 Bad Request`: a status with its canonical reason, as the reference prints it. */
export function statusLine(status: number): string {
  const reason = STATUS_CODES[status];
  return reason ? `${status} ${reason}` : String(status);
}

/**
 * Why a request could not be sent, without the request itself (no body, no
 * headers, so no secret). Timeouts and aborts read as such.
 */
export function transportDetail(url: string, error: unknown): string {
  const e = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `error sending request for url (${url}): operation timed out`;
  if (e?.name === 'AbortError') return `error sending request for url (${url}): aborted`;
  const cause = e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(error);
  return `error sending request for url (${url}): ${cause}`;
}

/**
 * The readable part of an OAuth error body: `error_description`, else
 * `error.message`, else the error code. A body that is not JSON is described by
 * its size only: it is not ours to echo (it might carry anything).
 */
export function oauthErrorDetail(body: string): string {
  const text = body.trim();
  if (text === '') return 'unknown error';
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return `non-JSON body (${Buffer.byteLength(text)} bytes)`;
  }
  const o = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const error = o.error;
  const errorObject = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : null;
  const nonEmpty = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v : null);
  return (
    nonEmpty(o.error_description) ??
    nonEmpty(errorObject?.message) ??
    nonEmpty(error) ??
    nonEmpty(errorObject?.code) ??
    'unknown error'
  );
}
