import { describe, expect, it } from 'vitest';
import { LANGS } from '../../src/shared/bridge.js';
import { checkKeyBase, resources, warningKey } from '../../src/shared/i18n/index.js';

function flatten(o: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (typeof v === 'string') out[prefix + k] = v;
    else Object.assign(out, flatten(v, `${prefix}${k}.`));
  }
  return out;
}

const flat = Object.fromEntries(LANGS.map((l) => [l, flatten(resources[l].translation)]));
const placeholders = (s: string) => [...s.matchAll(/\{\{(\w+)\}\}/g)].map((m) => m[1]).sort();

describe('kk/ru/en strings', () => {
  it('have the same keys, none empty, with the same {{placeholders}}', () => {
    const keys = Object.keys(flat.en!).sort();
    expect(keys.length).toBeGreaterThan(100);
    for (const l of LANGS) {
      expect(Object.keys(flat[l]!).sort(), l).toEqual(keys);
      for (const k of keys) {
        expect(flat[l]![k]!.trim(), `${l}:${k}`).not.toBe('');
        expect(placeholders(flat[l]![k]!), `${l}:${k}`).toEqual(placeholders(flat.en![k]!));
      }
    }
  });

  it('are translated: Kazakh and Russian differ from English outside names', () => {
    const same = (l: 'kk' | 'ru') => Object.keys(flat.en!).filter((k) => !k.startsWith('lang.') && k !== 'app.name' && flat[l]![k] === flat.en![k]);
    expect(same('kk')).toEqual([]);
    expect(same('ru')).toEqual([]);
    // Kazakh text uses its own letters (ә ғ қ ң ө ұ ү һ і), not only Russian Cyrillic.
    expect(Object.values(flat.kk!).join(' ')).toMatch(/[әғқңөұүһі]/);
  });

  it('maps check ids and warning kinds to keys that exist, with a fallback', () => {
    for (const id of ['camera.face', 'room.desk', 'processes', 'disk', 'unknown-thing']) {
      expect(flat.en![`${checkKeyBase(id)}.title`], id).toBeTruthy();
    }
    expect(checkKeyBase('unknown-thing')).toBe('checks.items.other');
    expect(flat.en![warningKey('focus_lost')]).toBe(resources.en.translation.warnings.focus_lost);
    expect(warningKey('nonsense')).toBe('warnings.generic');
  });
});
