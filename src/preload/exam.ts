/**
 * The exam view's preload (sandboxed, context-isolated, also in sub-frames). It exposes nothing to the exam page:
 * it only installs the print guard in the page's world, which reports each window.print() attempt to the main
 * process (CHANNELS.examPrint) to be logged; no print dialog opens.
 */
import { contextBridge, ipcRenderer } from 'electron';
import { CHANNELS } from '../shared/bridge.js';
import { printGuard } from './print-guard.js';

const report = (via: string): void => { ipcRenderer.send(CHANNELS.examPrint, String(via).slice(0, 40)); };
contextBridge.executeInMainWorld({ func: printGuard, args: [report] });
