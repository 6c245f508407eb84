import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { BridgeError, KioskState, PreviewFrame } from '../../../shared/bridge.js';
import { call, errorOf } from '../bridge.js';
import { useErrorText } from '../i18n.js';

const ICON = { ok: '✓', warn: '!', fail: '✕', pending: '…', unavailable: '–' } as const;
/** Problems first: what the student must fix is at the top, without scrolling. */
const ORDER = { fail: 0, warn: 1, pending: 2, unavailable: 3, ok: 4 } as const;
/** The service's sentence adds nothing when it only repeats the title ("Clipboard cleared." under "Clipboard cleared"). */
const sameText = (a: string, b: string) => a.replace(/[.!\s]+$/u, '').toLowerCase() === b.replace(/[.!\s]+$/u, '').toLowerCase();
const short = (s: string) => (s.length > 140 ? `${s.slice(0, 139)}…` : s);

export function Checks({ state, previews }: { state: KioskState; previews: Partial<Record<'face' | 'room', PreviewFrame>> }) {
  const { t } = useTranslation();
  const errText = useErrorText();
  const [error, setError] = useState<BridgeError | null>(null);
  const run = (fn: () => Promise<unknown>) => { setError(null); fn().catch((e) => setError(errorOf(e))); };
  return (
    <section className="card wide" data-testid="screen-checks">
      <h1>{t('checks.title')}</h1>
      <p className="lead">{t('checks.intro')}</p>
      <div className="previews">
        {(['face', 'room'] as const).map((src) => (
          <figure key={src} className="preview" data-testid={`preview-${src}`}>
            {previews[src] ? <img src={previews[src]!.dataUrl} alt={t(`checks.${src}`)} width={previews[src]!.width} height={previews[src]!.height} />
              : <div className="preview-wait">{t('checks.waiting')}</div>}
            <figcaption>{t(`checks.${src}`)}</figcaption>
          </figure>
        ))}
      </div>
      <ul className="checklist">
        {[...state.checks].sort((a, b) => ORDER[a.status] - ORDER[b.status]).map((c) => (
          <li key={c.id} className={`check ${c.status}`} data-testid={`check-${c.id}`} data-status={c.status}>
            <span className="icon" aria-hidden>{ICON[c.status]}</span>
            <div>
              <div className="check-title">{t(c.titleKey)} <span className="chip">{t(`checks.status.${c.status}`)}</span></div>
              {c.status === 'ok' && c.text?.[state.lang] && !sameText(c.text[state.lang]!, t(c.titleKey)) && <div className="small">{c.text[state.lang]}</div>}
              {c.status !== 'pending' && c.status !== 'ok' && (c.text?.[state.lang] ? <div className="fix">{c.text[state.lang]}</div>
                : c.fixKey ? <div className="fix">{t(c.fixKey)}</div> : null)}
              {c.status === 'unavailable' && c.text?.[state.lang] && c.fixKey && <div className="small">{t(c.fixKey)}</div>}
              {c.detail && c.status !== 'ok' && <div className="small" title={c.detail}>{short(c.detail)}</div>}
            </div>
          </li>
        ))}
      </ul>
      {error && <div className="error-card" role="alert">{errText(error)}</div>}
      {!state.checksRunning && !state.checksPassed && state.checks.length > 0 && <p className="blocked">{t('checks.blocked')}</p>}
      <div className="actions">
        <button type="button" data-testid="checks-run" disabled={state.checksRunning} onClick={() => run(() => call('runChecks'))}>
          {state.checksRunning ? t('checks.running') : t('checks.run')}
        </button>
        <button type="button" className="primary" data-testid="checks-next" disabled={state.checksRunning || !state.checksPassed}
          onClick={() => run(() => call('confirmChecks'))}>{t('checks.next')}</button>
      </div>
    </section>
  );
}
