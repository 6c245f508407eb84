import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { BridgeError, KioskState } from '../../../shared/bridge.js';
import { en } from '../../../shared/i18n/en.js';
import { call, errorOf } from '../bridge.js';
import { useErrorText } from '../i18n.js';

export function Rules({ state }: { state: KioskState }) {
  const { t } = useTranslation();
  const errText = useErrorText();
  const [accepted, setAccepted] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<BridgeError | null>(null);
  const start = () => {
    setBusy(true);
    call('acceptRules').catch((e) => { setError(errorOf(e)); setBusy(false); });
  };
  return (
    <section className="card narrow" data-testid="screen-rules">
      <h1>{t('rules.title')}</h1>
      <p className="lead">{state.exam.title} · {state.exam.durationMinutes} min</p>
      <p>{t('rules.intro')}</p>
      <ol className="rules">
        {Object.keys(en.rules.items).map((k) => <li key={k}>{t(`rules.items.${k}`)}</li>)}
      </ol>
      <label className="accept">
        <input type="checkbox" data-testid="rules-accept" checked={accepted} onChange={(e) => setAccepted(e.target.checked)} />
        {t('rules.accept')}
      </label>
      {error && <div className="error-card" role="alert">{errText(error)}</div>}
      <div className="actions">
        <button type="button" className="primary" data-testid="rules-start" disabled={!accepted || busy} onClick={start}>{t('rules.start')}</button>
      </div>
    </section>
  );
}
