import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import type { BridgeError, FieldSpec, KioskState, Lang } from '../../../shared/bridge.js';
import { call, errorOf } from '../bridge.js';
import { useErrorText } from '../i18n.js';

function fieldLabel(f: FieldSpec, lang: Lang, t: (k: string) => string, exists: (k: string) => boolean): string {
  const own = f.label?.[lang] ?? f.label?.en;
  if (own) return own;
  const key = `identify.fields.${f.id}`;
  return exists(key) ? t(key) : f.id;
}

export function Identify({ state }: { state: KioskState }) {
  const { t, i18n } = useTranslation();
  const errText = useErrorText();
  const [values, setValues] = useState<Record<string, string>>({});
  const [fieldErr, setFieldErr] = useState<Record<string, string>>({});
  const [error, setError] = useState<BridgeError | null>(null);
  const [busy, setBusy] = useState(false);

  const validate = (): boolean => {
    const errs: Record<string, string> = {};
    for (const f of state.exam.fields) {
      const v = (values[f.id] ?? '').trim();
      if (!v) errs[f.id] = t('identify.required');
      else if (f.pattern && !new RegExp(`^(?:${f.pattern})$`, 'u').test(v)) errs[f.id] = t('identify.invalid');
    }
    setFieldErr(errs);
    return Object.keys(errs).length === 0;
  };

  const submit = async (ev: FormEvent) => {
    ev.preventDefault();
    setError(null);
    if (!validate()) return;
    setBusy(true);
    try {
      await call('identify', values);
    } catch (e) {
      const err = errorOf(e);
      if (err.code === 'FIELD_INVALID' && err.field) setFieldErr({ [err.field]: t('identify.invalid') });
      else setError(err);
      setBusy(false);
    }
  };

  return (
    <section className="card narrow" data-testid="screen-identify">
      <div className="lang-switch" role="group" aria-label={t('lang.label')}>
        {state.exam.languages.map((l) => (
          <button key={l} type="button" className={l === state.lang ? 'lang active' : 'lang'} aria-pressed={l === state.lang}
            data-testid={`lang-${l}`} onClick={() => void call('setLanguage', l)}>{t(`lang.${l}`)}</button>
        ))}
      </div>
      <h1>{t('identify.title')}</h1>
      <p className="lead">{t('identify.intro')}</p>
      <form onSubmit={(e) => void submit(e)} noValidate>
        {state.exam.fields.map((f, i) => (
          <label key={f.id} className="field">
            <span>{fieldLabel(f, state.lang, t, (k) => i18n.exists(k))}</span>
            <input name={f.id} data-testid={`field-${f.id}`} autoFocus={i === 0} autoComplete="off" spellCheck={false} disabled={busy}
              value={values[f.id] ?? ''} aria-invalid={!!fieldErr[f.id]}
              onChange={(e) => { setValues({ ...values, [f.id]: e.target.value }); setFieldErr(({ [f.id]: _, ...rest }) => rest); }} />
            {f.pattern && !fieldErr[f.id] && f.id === 'studentId' && <small className="hint">{t('identify.hintPattern')}</small>}
            {fieldErr[f.id] && <small className="field-error" role="alert">{fieldErr[f.id]}</small>}
          </label>
        ))}
        {error && <div className="error-card" role="alert">{errText(error)}<div className="small">{error.message}</div></div>}
        <button type="submit" className="primary" data-testid="identify-submit" disabled={busy}>{busy ? t('identify.starting') : t('identify.submit')}</button>
      </form>
    </section>
  );
}
