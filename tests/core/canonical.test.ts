import { describe, expect, it } from 'vitest';
import { canonicalize, canonicalHash } from '../../src/main/core/canonical.js';

describe('RFC 8785 canonical JSON', () => {
  it('sorts keys by UTF-16 code units at every depth and drops whitespace', () => {
    expect(canonicalize({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    // "\u20ac" (€) sorts after "\r" and before the surrogate pair of 😀 in UTF-16 order
    expect(canonicalize({ '😀': 1, '€': 2, '\r': 3, '1': 4 })).toBe('{"\\r":3,"1":4,"€":2,"😀":1}');
  });

  it('formats numbers like ECMAScript (RFC 8785 appendix examples)', () => {
    expect(canonicalize([1e21, 1e-7, 0.000001, -0, 333333333.3333333, 4.5, 2e-3, 1e+30])).toBe('[1e+21,1e-7,0.000001,0,333333333.3333333,4.5,0.002,1e+30]');
  });

  it('escapes strings minimally', () => {
    expect(canonicalize('\u0007\n"\\/é')).toBe('"\\u0007\\n\\"\\\\/é"');
  });

  it('rejects values JSON cannot carry instead of changing them', () => {
    expect(() => canonicalize({ a: NaN })).toThrow(/\$\.a is not a finite number/);
    expect(() => canonicalize([Infinity])).toThrow(/finite/);
    expect(() => canonicalize({ s: '\ud800' })).toThrow(/lone surrogate/);
    expect(() => canonicalize([undefined])).toThrow(/undefined/);
  });

  it('hashes equal values equally whatever their key order', () => {
    expect(canonicalHash({ x: 1, y: [1, 2] })).toBe(canonicalHash({ y: [1, 2], x: 1 }));
    expect(canonicalHash({ x: 1 })).not.toBe(canonicalHash({ x: 2 }));
  });
});
