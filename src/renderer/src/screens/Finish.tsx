import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { KioskState } from '../../../shared/bridge.js';
import { call } from '../bridge.js';
import { useErrorText } from '../i18n.js';

function mb(n: number): string {
  return n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MB` : `${Math.round(n / 1024)} KB`;
}

/** m:ss, or h:mm:ss from an hour on. */
export function eta(s: number): string {
  const m = Math.floor(s / 60);
  const two = (n: number) => String(n).padStart(2, '0');
  return m >= 60 ? `${Math.floor(m / 60)}:${two(m % 60)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
}

/** Groups a long receipt id for reading aloud and writing down: 4 characters a group. */
export function groupId(id: string): string {
  return id.replace(/(.{4})(?=.)/g, '$1 ');
}

export function Finish({ state }: { state: KioskState }) {
  const { t } = useTranslation();
  const errText = useErrorText();
  const [busy, setBusy] = useState(false);
  const f = state.finish;
  const retry = () => { setBusy(true); call('retryUpload').finally(() => setBusy(false)); };
  return (
    <section className="card narrow" data-testid="screen-finish" data-phase={f?.phase}>
      <h1>{t('finish.title')}</h1>
      {f?.phase === 'sealing' && <><p className="lead">{t('finish.sealing')}</p><progress /><p className="small">{t('finish.wait')}</p></>}
      {f?.phase === 'uploading' && (
        <>
          <p className="lead">{f.verifying ? t('finish.verifying') : t('finish.uploading')}</p>
          <progress max={f.totalBytes || 1} value={f.sentBytes} data-testid="upload-progress" />
          {!f.verifying && f.filesTotal !== undefined && (
            <p className="remaining" data-testid="upload-remaining">
              {t('finish.remaining', { files: Math.max(0, f.filesTotal - (f.filesDone ?? 0)), size: mb(Math.max(0, f.totalBytes - f.sentBytes)) })}
              {f.etaSeconds !== null && f.etaSeconds !== undefined && f.etaSeconds > 0 && <> · {t('finish.eta', { time: eta(f.etaSeconds) })}</>}
            </p>
          )}
          {!!f.sentLiveFiles && <p className="small" data-testid="upload-sent-live">{t('finish.sentLive', { files: f.sentLiveFiles, size: mb(f.sentLiveBytes ?? 0) })}</p>}
          {f.retrying && <p className="small warn-text" title={f.retrying}>{t('finish.retrying')}</p>}
          <p className="small">{f.totalBytes ? t('finish.progress', { sent: mb(f.sentBytes), total: mb(f.totalBytes) }) : ''} · {t('finish.wait')}</p>
        </>
      )}
      {f?.phase === 'failed' && (
        <>
          <div className="error-card" role="alert">{t('finish.failed')}<div className="small">{errText(f.error)}</div></div>
          {state.finish?.manifestSha256 && <button type="button" className="primary" data-testid="retry" disabled={busy} onClick={retry}>{t('finish.retry')}</button>}
        </>
      )}
      {f?.phase === 'done' && (
        <>
          <p className="lead ok">✓ {t('finish.done')}</p>
          {f.receiptId ? (
            <div className="receipt">
              <div className="small">{t('finish.receipt')}</div>
              <div className="receipt-id" data-testid="receipt-id" data-value={f.receiptId}>{groupId(f.receiptId)}</div>
              <p className="small">{t('finish.receiptNote')}</p>
            </div>
          ) : <p data-testid="local-only">{t('finish.localOnly')}</p>}
        </>
      )}
      {state.released && <div className="actions"><button type="button" data-testid="close" onClick={() => void call('quit')}>{t('finish.close')}</button></div>}
    </section>
  );
}
