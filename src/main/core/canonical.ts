import { createHash } from 'node:crypto';

/**
 * RFC 8785 JSON Canonicalization Scheme. Keys are sorted by UTF-16 code units (what Array#sort does on strings),
 * numbers use the ECMAScript shortest form (what JSON.stringify does), strings use JSON.stringify's escaping.
 * Values JSON cannot carry (NaN, Infinity, undefined in arrays, lone surrogates, bigint) are rejected rather than
 * silently changed, because a signature over a changed value would prove the wrong thing.
 */
export function canonicalize(value: unknown): string {
  return ser(value, '$');
}

function ser(v: unknown, path: string): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return v ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(v)) throw new TypeError(`canonicalize: ${path} is not a finite number`);
      return JSON.stringify(v);
    case 'string':
      if (/\p{Surrogate}/u.test(v) && !v.isWellFormed?.()) throw new TypeError(`canonicalize: ${path} has a lone surrogate`);
      return JSON.stringify(v);
    case 'object': {
      if (Array.isArray(v)) {
        return '[' + v.map((x, i) => {
          if (x === undefined || typeof x === 'function') throw new TypeError(`canonicalize: ${path}[${i}] is undefined`);
          return ser(x, `${path}[${i}]`);
        }).join(',') + ']';
      }
      const obj = (typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON(): unknown }).toJSON() : v) as Record<string, unknown>;
      if (obj !== v) return ser(obj, path);
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined && typeof obj[k] !== 'function').sort();
      return '{' + keys.map((k) => JSON.stringify(k) + ':' + ser(obj[k], `${path}.${k}`)).join(',') + '}';
    }
    default:
      throw new TypeError(`canonicalize: ${path} has unsupported type ${typeof v}`);
  }
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalize(value));
}
