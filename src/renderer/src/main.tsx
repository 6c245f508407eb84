import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App.js';
import { initI18n } from './i18n.js';

initI18n();
createRoot(document.getElementById('root')!).render(<StrictMode><App /></StrictMode>);
