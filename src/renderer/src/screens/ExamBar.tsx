import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { STATUS_BAR_HEIGHT, type ExamWarning, type KioskState } from '../../../shared/bridge.js';
import { call } from '../bridge.js';
import { ProctorExit } from './ProctorExit.js';

/** h:mm:ss (or m:ss under an hour). */
export function clock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

const SHOW_WARNING_MS = 10_000;

/** The thin bar above the exam page: recording, elapsed/remaining, the latest warning, finish. */
export function ExamBar({ state }: { state: KioskState }) {
  const { t } = useTranslation();
  const [now, setNow] = useState(Date.now());
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, []);
  const elapsed = now - (state.examStartedAt ?? now);
  const remaining = (state.examEndsAt ?? now) - now;
  const latest = state.warnings.at(-1);
  const showWarning = latest && now - latest.at < SHOW_WARNING_MS;
  const message = (w: ExamWarning) => w.text?.[state.lang] ?? t(w.messageKey);
  const finish = () => { setBusy(true); call('finish').catch(() => setBusy(false)); };
  return (
    <div className="exam" data-testid="screen-exam">
      <div className="statusbar" role="status" style={{ height: STATUS_BAR_HEIGHT }}>
        <span className={state.recording ? 'rec' : 'rec off'} data-testid="rec">
          <span className="dot" />{state.recording ? t('exam.recording') : t('exam.notRecording')}
        </span>
        <span className="time"><small>{t('exam.elapsed')}</small> <b data-testid="elapsed">{clock(elapsed)}</b></span>
        <span className={remaining <= 5 * 60_000 ? 'time low' : 'time'}><small>{t('exam.remaining')}</small> <b data-testid="remaining">{clock(remaining)}</b></span>
        {confirm ? (
          <span className="warn-slot confirm">
            <span className="confirm-q">{t('exam.confirm')}</span>
            <button type="button" className="danger" data-testid="finish-yes" disabled={busy} onClick={finish}>{t('exam.yes')}</button>
            <button type="button" data-testid="finish-no" disabled={busy} onClick={() => setConfirm(false)}>{t('exam.no')}</button>
          </span>
        ) : (
          <>
            <span className="warn-slot" aria-live="polite">
              {remaining <= 0 ? <span className="warning" data-testid="time-up">{t('exam.timeUp')}</span>
                : showWarning ? (
                  <span className="warning" data-testid="warning" data-kind={latest.kind} title={latest.detail ? `${message(latest)} (${latest.detail})` : message(latest)}>
                    {message(latest)}{latest.detail && <span className="warning-detail" data-testid="warning-detail"> · {latest.detail}</span>}
                  </span>) : null}
              {state.warningCount > 0 && <span className="chip" data-testid="warning-count">{t('exam.warnings', { count: state.warningCount })}</span>}
            </span>
            <button type="button" className="primary" data-testid="finish" onClick={() => setConfirm(true)}>{t('exam.finish')}</button>
          </>
        )}
        {state.exam.hasExitCode && <ProctorExit compact />}
      </div>
      <div className="exam-area" data-testid="exam-area">{t('exam.placeholder')}</div>
    </div>
  );
}
