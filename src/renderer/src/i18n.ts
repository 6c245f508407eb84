import i18next from 'i18next';
import { initReactI18next, useTranslation } from 'react-i18next';
import type { BridgeError, Lang } from '../../shared/bridge.js';
import { DEFAULT_LANG, resources } from '../../shared/i18n/index.js';

export function initI18n(lang: Lang = DEFAULT_LANG): typeof i18next {
  void i18next.use(initReactI18next).init({
    resources, lng: lang, fallbackLng: 'en', interpolation: { escapeValue: false }, returnNull: false, initAsync: false,
  });
  return i18next;
}

export function setUiLanguage(lang: Lang): void {
  if (i18next.language !== lang) void i18next.changeLanguage(lang);
  document.documentElement.lang = lang;
}

/** The student-facing text for a bridge error: its own translation when the code has one, else the generic text. */
export function useErrorText(): (e: BridgeError | undefined) => string {
  const { t, i18n } = useTranslation();
  return (e) => {
    if (!e) return '';
    const key = `errors.${e.code}`;
    return i18n.exists(key) ? t(key) : t('errors.generic', { message: e.message });
  };
}
