/**
 * User-facing upload text in Kazakh, Russian and English (CLI and progress; the UI keeps its own i18n files).
 * Language: KUZET_LANG, else LANG/LC_ALL (kk_*, ru_*), else English.
 */
import type { UploadProgress } from './spool.js';

export type Lang = 'kk' | 'ru' | 'en';

const T = {
  uploading: { kk: 'Жүктеу', ru: 'Загрузка', en: 'Uploading' },
  files: { kk: 'файл', ru: 'файлов', en: 'files' },
  eta: { kk: 'қалды', ru: 'осталось', en: 'ETA' },
  retrying: { kk: 'қайталау', ru: 'повтор', en: 'retrying' },
  verifying: { kk: 'Сервер дәлелдерді тексеруде…', ru: 'Сервер проверяет доказательства…', en: 'The server is verifying the evidence…' },
  receipt: { kk: 'Сервердің қолтаңбалы түбіртегі', ru: 'Подписанная квитанция сервера', en: 'Server-signed receipt' },
  kept: { kk: 'Жергілікті дәлелдер сақталды (түбіртек жоқ).', ru: 'Локальные доказательства сохранены (квитанции нет).', en: 'Local evidence is kept (no receipt).' },
  enrolled: { kk: 'Компьютер тіркелді', ru: 'Компьютер зарегистрирован', en: 'Machine enrolled' },
  deleted: { kk: 'Сақтау саясаты бойынша жойылды', ru: 'Удалено по политике хранения', en: 'Deleted per retention policy' },
} as const;

export type MessageKey = keyof typeof T;

export function lang(env: NodeJS.ProcessEnv = process.env): Lang {
  const v = (env.KUZET_LANG || env.LC_ALL || env.LANG || '').toLowerCase();
  if (v.startsWith('kk')) return 'kk';
  if (v.startsWith('ru')) return 'ru';
  return 'en';
}

export function t(key: MessageKey, l: Lang = lang()): string {
  return T[key][l];
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function formatEta(s: number | null): string {
  if (s === null) return '--:--';
  const m = Math.floor(s / 60);
  const sec = s % 60;
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** One progress line: `Uploading [#####-----]  52%  12.1 MB/23.4 MB  7/12 files  3.1 MB/s  ETA 0:04` (no rate while unknown). */
export function progressLine(p: UploadProgress, l: Lang = lang(), width = 24): string {
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 1;
  const fill = Math.round(frac * width);
  const bar = '#'.repeat(fill) + '-'.repeat(width - fill);
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  const retry = p.retrying ? `  (${t('retrying', l)}: ${p.retrying.slice(0, 60)})` : '';
  // The rate is known once half a second of sending has been measured; until then (or for an upload that took less)
  // it is left out rather than shown as 0 B/s.
  const rate = p.rateBps > 0 ? `  ${formatBytes(p.rateBps)}/s` : '';
  return `${t('uploading', l)} [${bar}] ${pct}  ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}  ${p.filesDone}/${p.filesTotal} ${t('files', l)}${rate}  ${t('eta', l)} ${formatEta(p.etaSeconds)}${retry}`;
}
