import type { Lang } from '../bridge.js';
import { en, type Strings } from './en.js';
import { kk } from './kk.js';
import { ru } from './ru.js';

export type { Strings };
/** i18next resources: one namespace ("translation") per language. */
export const resources: Record<Lang, { translation: Strings }> = {
  kk: { translation: kk },
  ru: { translation: ru },
  en: { translation: en as unknown as Strings },
};

export const DEFAULT_LANG: Lang = 'kk';

/** Maps a check id (camera.face) to its i18n key base (checks.items.camera_face); unknown ids use "other". */
export function checkKeyBase(id: string): string {
  const k = id.replace(/[^a-z0-9]+/gi, '_');
  return `checks.items.${k in en.checks.items ? k : 'other'}`;
}

/** Maps an event type (kiosk.focus_lost, monitor.process, episode.opened + kind) to a `warnings.*` key. */
export function warningKey(kind: string): string {
  const k = kind.replace(/[^a-z0-9]+/gi, '_');
  return `warnings.${k in en.warnings ? k : 'generic'}`;
}
