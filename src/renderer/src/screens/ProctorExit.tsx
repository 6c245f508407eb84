import { useState, type FormEvent } from 'react';
import { useTranslation } from 'react-i18next';
import { call, errorOf } from '../bridge.js';
import { useErrorText } from '../i18n.js';

export function ProctorExit({ compact = false }: { compact?: boolean }) {
  const { t } = useTranslation();
  const errText = useErrorText();
  const [open, setOpen] = useState(false);
  const [code, setCode] = useState('');
  const [msg, setMsg] = useState('');
  const submit = (ev: FormEvent) => {
    ev.preventDefault();
    call('proctorExit', code).then(() => setOpen(false), (e) => { const err = errorOf(e); setMsg(errText(err)); setCode(''); });
  };
  if (!open) return <button type="button" className={compact ? 'link compact' : 'link'} data-testid="proctor-open" onClick={() => setOpen(true)}>{t('proctor.open')}</button>;
  return (
    <form className={compact ? 'proctor compact' : 'proctor'} onSubmit={submit}>
      <label>{t('proctor.code')} <input type="password" data-testid="proctor-code" autoFocus value={code} onChange={(e) => setCode(e.target.value)} /></label>
      <button type="submit" data-testid="proctor-submit">{t('proctor.submit')}</button>
      <button type="button" onClick={() => { setOpen(false); setMsg(''); }}>{t('proctor.cancel')}</button>
      {msg && <span className="field-error" role="alert">{msg}</span>}
    </form>
  );
}
