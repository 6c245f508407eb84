import { useEffect, useState } from 'react';
import { useTranslation } from 'react-i18next';
import type { BridgeError, KioskState, PreviewFrame, Screen } from '../../shared/bridge.js';
import { bridge, call, errorOf } from './bridge.js';
import { setUiLanguage, useErrorText } from './i18n.js';
import { Identify } from './screens/Identify.js';
import { Checks } from './screens/Checks.js';
import { Rules } from './screens/Rules.js';
import { ExamBar } from './screens/ExamBar.js';
import { Finish } from './screens/Finish.js';
import { ProctorExit } from './screens/ProctorExit.js';

const STEPS: { screen: Screen[]; key: string }[] = [
  { screen: ['identify'], key: 'steps.identify' },
  { screen: ['checks'], key: 'steps.checks' },
  { screen: ['rules'], key: 'steps.rules' },
  { screen: ['exam'], key: 'steps.exam' },
  { screen: ['finishing', 'done'], key: 'steps.finish' },
];

export function App() {
  const { t } = useTranslation();
  const errText = useErrorText();
  const [state, setState] = useState<KioskState | null>(null);
  const [previews, setPreviews] = useState<Partial<Record<'face' | 'room', PreviewFrame>>>({});
  const [fatal, setFatal] = useState<BridgeError | null>(null);

  useEffect(() => {
    let off = () => {};
    let offP = () => {};
    try {
      const k = bridge();
      off = k.onState((s) => { setUiLanguage(s.lang); setState(s); });
      offP = k.onPreview((f) => setPreviews((p) => ({ ...p, [f.source]: f })));
      call('getState').then((s) => { setUiLanguage(s.lang); setState((cur) => cur ?? s); }, (e) => setFatal(errorOf(e)));
    } catch (e) {
      setFatal(errorOf(e));
    }
    return () => { off(); offP(); };
  }, []);

  if (fatal) {
    return <main className="page"><div className="card error-card" role="alert" data-testid="fatal">{errText(fatal)}</div></main>;
  }
  if (!state) return <main className="page"><div className="card">…</div></main>;

  if (state.screen === 'exam') return <ExamBar state={state} />;

  const stepIndex = STEPS.findIndex((s) => s.screen.includes(state.screen));
  return (
    <div className="shell" data-screen={state.screen}>
      <header className="top">
        <div className="brand">
          <span className="logo" aria-hidden>◆</span> {t('app.name')}
          <span className="exam-title">{state.exam.title}</span>
          {state.exam.demo && <span className="demo-badge">{t('app.demo')}</span>}
        </div>
        {state.recording && <span className="rec" data-testid="rec"><span className="dot" />{t('exam.recording')}</span>}
      </header>
      <ol className="stepper" aria-label={t('app.step', { n: stepIndex + 1, total: STEPS.length })}>
        {STEPS.map((s, i) => (
          <li key={s.key} className={i < stepIndex ? 'done' : i === stepIndex ? 'current' : ''} aria-current={i === stepIndex ? 'step' : undefined}>
            <span className="num">{i + 1}</span>{t(s.key)}
          </li>
        ))}
      </ol>
      <main className="page">
        {state.screen === 'identify' && <Identify state={state} />}
        {state.screen === 'checks' && <Checks state={state} previews={previews} />}
        {state.screen === 'rules' && <Rules state={state} />}
        {(state.screen === 'finishing' || state.screen === 'done') && <Finish state={state} />}
      </main>
      <footer className="foot">
        <span className="small">{t('app.tagline')} · {state.exam.examId}{state.sessionId ? ` · ${state.sessionId}` : ''}</span>
        {state.exam.hasExitCode && !state.released && <ProctorExit />}
      </footer>
    </div>
  );
}
