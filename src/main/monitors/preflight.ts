import type { AudioDeviceInfo, DisplaySummary, Emit, HidDeviceInfo, VmReport } from './events.js';
import { MonitorSet, type MonitorsConfig, type MonitorsOptions } from './monitors.js';
import type { ScanResult, Tracked } from './processes.js';
import { SourceUnavailable } from './foreground.js';
import { errMsg } from './util.js';

export type Lang = 'kk' | 'ru' | 'en';
export type Text = Record<Lang, string>;
export type CheckStatus = 'clean' | 'flagged' | 'blocked' | 'unavailable';

export interface PreflightItem {
  id: 'process' | 'vm' | 'remote' | 'display' | 'device' | 'foreground' | 'clipboard';
  status: CheckStatus;
  /** One plain sentence for the student/technician, in each UI language. */
  title: Text;
  /** Details, one line each (process names, signals, devices). */
  details: string[];
}

export interface PreflightResult {
  /** false when at least one item is "blocked": the exam must not start. */
  ok: boolean;
  items: PreflightItem[];
  blocked: PreflightItem[];
  flagged: PreflightItem[];
  /** The raw findings, for the pre-check screen and the session log. */
  processes: { running: Tracked[]; terminated: number } | null;
  vm: VmReport | null;
  displays: DisplaySummary | null;
  devices: { hid: HidDeviceInfo[]; audio: AudioDeviceInfo[] } | null;
}

const T = {
  processClean: { en: 'No forbidden programs are running.', ru: 'Запрещённые программы не запущены.', kk: 'Тыйым салынған бағдарламалар іске қосылмаған.' },
  processClosed: (n: number): Text => ({ en: `${n} forbidden program(s) were closed.`, ru: `Закрыто запрещённых программ: ${n}.`, kk: `Тыйым салынған ${n} бағдарлама жабылды.` }),
  processFlagged: (names: string): Text => ({ en: `These programs are running and will be noted in the report: ${names}.`, ru: `Эти программы запущены и будут отмечены в отчёте: ${names}.`, kk: `Бұл бағдарламалар іске қосулы, есепте белгіленеді: ${names}.` }),
  processBlocked: (names: string): Text => ({ en: `Close these programs before the exam can start: ${names}.`, ru: `Закройте эти программы, иначе экзамен не начнётся: ${names}.`, kk: `Емтихан басталуы үшін мына бағдарламаларды жабыңыз: ${names}.` }),
  vmNone: { en: 'This computer does not look like a virtual machine.', ru: 'Этот компьютер не похож на виртуальную машину.', kk: 'Бұл компьютер виртуалды машинаға ұқсамайды.' },
  vmWeak: { en: 'One weak sign of virtualization was seen; it is only noted.', ru: 'Замечен один слабый признак виртуализации; он только отмечается.', kk: 'Виртуализацияның бір әлсіз белгісі байқалды; ол тек белгіленеді.' },
  vmFlag: (h: string): Text => ({ en: `This computer may be a virtual machine (${h}); this is noted for the proctor.`, ru: `Этот компьютер, возможно, виртуальная машина (${h}); это отмечается для проктора.`, kk: `Бұл компьютер виртуалды машина болуы мүмкін (${h}); бұл проктор үшін белгіленеді.` }),
  vmBlock: (h: string): Text => ({ en: `This exam cannot run in a virtual machine (${h}). Use a lab computer.`, ru: `Этот экзамен нельзя сдавать в виртуальной машине (${h}). Используйте компьютер в аудитории.`, kk: `Бұл емтиханды виртуалды машинада тапсыруға болмайды (${h}). Аудиториядағы компьютерді пайдаланыңыз.` }),
  remoteClean: { en: 'No remote session.', ru: 'Удалённых сеансов нет.', kk: 'Қашықтан қосылған сеанс жоқ.' },
  remoteOthers: { en: 'Someone is logged in to this computer over the network; this is noted.', ru: 'К этому компьютеру кто-то подключён по сети; это отмечается.', kk: 'Бұл компьютерге желі арқылы біреу кірген; бұл белгіленеді.' },
  remoteOwnFlag: { en: 'Kuzet is running in a remote session; this is noted.', ru: 'Kuzet запущен в удалённом сеансе; это отмечается.', kk: 'Kuzet қашықтағы сеансында іске қосылған; бұл белгіленеді.' },
  remoteOwnBlock: { en: 'Kuzet is running in a remote session (RDP/SSH). Sit the exam at the computer itself.', ru: 'Kuzet запущен в удалённом сеансе (RDP/SSH). Сдавайте экзамен за самим компьютером.', kk: 'Kuzet қашықтағы сеанста (RDP/SSH) іске қосылған. Емтиханды компьютердің өзінде тапсырыңыз.' },
  displayClean: (n: number): Text => ({ en: `${n} display connected.`, ru: `Подключено дисплеев: ${n}.`, kk: `Қосылған дисплей саны: ${n}.` }),
  displayProblem: (what: string, block: boolean): Text => block
    ? { en: `Disconnect extra displays before the exam: ${what}.`, ru: `Отключите лишние дисплеи перед экзаменом: ${what}.`, kk: `Емтихан алдында артық дисплейлерді ажыратыңыз: ${what}.` }
    : { en: `Display setup is noted for the proctor: ${what}.`, ru: `Конфигурация дисплеев отмечается для проктора: ${what}.`, kk: `Дисплей баптауы проктор үшін белгіленеді: ${what}.` },
  deviceClean: (n: number): Text => ({ en: `Devices checked (${n}); no headphones or headset found.`, ru: `Устройства проверены (${n}); наушников и гарнитуры нет.`, kk: `Құрылғылар тексерілді (${n}); құлаққап не гарнитура табылмады.` }),
  deviceFlag: (what: string): Text => ({ en: `Headphones or a headset seem to be connected (${what}); remove them unless the exam allows them.`, ru: `Похоже, подключены наушники или гарнитура (${what}); отключите их, если экзамен их не разрешает.`, kk: `Құлаққап не гарнитура қосылған сияқты (${what}); емтихан рұқсат етпесе, оларды ажыратыңыз.` }),
  unavailable: (what: string, why: string): Text => ({ en: `${what} cannot be checked on this computer: ${why}.`, ru: `${what}: проверка на этом компьютере невозможна: ${why}.`, kk: `${what}: бұл компьютерде тексеру мүмкін емес: ${why}.` }),
  fgClean: { en: 'Window focus can be watched.', ru: 'Переключение окон отслеживается.', kk: 'Терезелер ауысуы бақыланады.' },
  clipClean: { en: 'Clipboard cleared.', ru: 'Буфер обмена очищен.', kk: 'Алмасу буфері тазартылды.' },
};

function names(list: Tracked[]): string {
  return [...new Set(list.map((t) => t.hit.entry))].join(', ');
}

/**
 * The pre-check before an exam: scans processes (ending "terminate" entries), checks VM and remote sessions,
 * displays, devices, the foreground source and the clipboard, and returns a plain-language checklist. `ok` is
 * false while something blocks the exam (a "terminate" program that could not be ended, or a VM / remote session
 * / display setup the exam's policy refuses). Findings are also written through `emit` when given.
 */
export async function preflight(cfg: MonitorsConfig, opts: MonitorsOptions & { emit?: Emit } = {}): Promise<PreflightResult> {
  const emit: Emit = opts.emit ?? (() => undefined);
  const set = new MonitorSet(cfg, emit, opts);
  const items: PreflightItem[] = [];
  const res: PreflightResult = { ok: true, items, blocked: [], flagged: [], processes: null, vm: null, displays: null, devices: null };

  if (set.processes) {
    set.processes.phase = 'preflight';
    let scan: ScanResult | null = null;
    let terminated = 0;
    try {
      scan = await set.processes.scan();
      terminated = scan.found.filter((t) => t.terminated).length;
    } catch (e) {
      items.push({ id: 'process', status: 'unavailable', title: T.unavailable('Programs', errMsg(e)), details: [] });
    }
    if (scan) {
      res.processes = { running: scan.running, terminated };
      const blockers = scan.blockers;
      const flagged = scan.running.filter((t) => !blockers.includes(t));
      const details = [...scan.running.map((t) => `${t.hit.entry}: pid ${t.proc.pid} ${t.proc.exe ?? t.proc.name} (${t.hit.policy}${t.failed ? `; ${t.failed}` : ''})`), ...(terminated ? [`${terminated} closed`] : [])];
      if (blockers.length) items.push({ id: 'process', status: 'blocked', title: T.processBlocked(names(blockers)), details });
      else if (flagged.length) items.push({ id: 'process', status: 'flagged', title: T.processFlagged(names(flagged)), details });
      else items.push({ id: 'process', status: 'clean', title: terminated ? T.processClosed(terminated) : T.processClean, details });
    }
  }

  if (set.monitorNames.includes('vm')) {
    const vm = await set.checkVm();
    res.vm = vm;
    if (!vm) items.push({ id: 'vm', status: 'unavailable', title: T.unavailable('Virtual machine check', 'the system information could not be read'), details: [] });
    else {
      const details = vm.signals.filter((s) => s.kind !== 'remote').map((s) => `[${s.weight}] ${s.id}: ${s.evidence}`);
      const h = vm.hypervisor ?? 'unknown hypervisor';
      if (vm.verdict === 'likely' && cfg.vm === 'block') items.push({ id: 'vm', status: 'blocked', title: T.vmBlock(h), details });
      else if (vm.verdict === 'likely' || vm.verdict === 'possible') items.push({ id: 'vm', status: 'flagged', title: T.vmFlag(h), details });
      else items.push({ id: 'vm', status: 'clean', title: vm.verdict === 'unlikely' ? T.vmWeak : T.vmNone, details });
      const r = vm.remoteSession;
      if (r.own) items.push({ id: 'remote', status: cfg.remoteSession === 'block' ? 'blocked' : 'flagged', title: cfg.remoteSession === 'block' ? T.remoteOwnBlock : T.remoteOwnFlag, details: r.evidence });
      else if (r.others) items.push({ id: 'remote', status: 'flagged', title: T.remoteOthers, details: r.evidence });
      else items.push({ id: 'remote', status: 'clean', title: T.remoteClean, details: [] });
    }
  }

  if (set.displays) {
    try {
      const d = await set.displays.check();
      res.displays = d;
      const problems: string[] = [];
      if (d.count > cfg.maxDisplays) problems.push(`${d.count} displays (allowed ${cfg.maxDisplays})`);
      if (d.mirrored.length) problems.push(`mirrored: ${d.mirrored.map((g) => g.join(' = ')).join('; ')}`);
      if (d.virtual.length) problems.push(`virtual: ${d.virtual.join(', ')}`);
      const details = d.displays.map((x) => `${x.name} ${x.width}x${x.height}+${x.x}+${x.y}${x.primary ? ' primary' : ''}${x.virtual ? ` (${x.virtual})` : ''}`);
      if (!problems.length) items.push({ id: 'display', status: 'clean', title: T.displayClean(d.count), details });
      else items.push({ id: 'display', status: cfg.displays === 'block' ? 'blocked' : 'flagged', title: T.displayProblem(problems.join('; '), cfg.displays === 'block'), details });
    } catch (e) {
      items.push({ id: 'display', status: 'unavailable', title: T.unavailable('Displays', errMsg(e)), details: [] });
    }
  }

  if (set.devices) {
    const all = await set.devices.check();
    const hid = all.filter((d) => d.type === 'hid') as (HidDeviceInfo & { type: 'hid' })[];
    const audio = all.filter((d) => d.type === 'audio') as (AudioDeviceInfo & { type: 'audio' })[];
    res.devices = { hid, audio };
    const worn = audio.filter((a) => a.bus === 'bluetooth' || a.portKind === 'headphones' || a.portKind === 'headset' || /headset|headphone/.test(a.formFactor ?? ''));
    const headsetHid = hid.filter((h) => h.kinds.some((k) => k.startsWith('telephony')));
    const details = [...hid.map((h) => `HID ${h.key} ${h.product ?? ''} [${h.kinds.join(', ') || 'other'}]`), ...audio.map((a) => `audio ${a.direction} ${a.description}${a.activePort ? ` port ${a.activePort}` : ''}${a.bus ? ` (${a.bus})` : ''}`)];
    const st = set.devices.stats().unavailable as Record<string, string>;
    if (worn.length || headsetHid.length) items.push({ id: 'device', status: 'flagged', title: T.deviceFlag([...worn.map((a) => a.description), ...headsetHid.map((h) => h.product ?? h.key)].join(', ')), details });
    else if (st.hid && st.audio) items.push({ id: 'device', status: 'unavailable', title: T.unavailable('Devices', `${st.hid}; ${st.audio}`), details });
    else items.push({ id: 'device', status: 'clean', title: T.deviceClean(all.length), details: [...details, ...Object.entries(st).map(([k, v]) => `${k}: ${v}`)] });
  }

  if (set.foreground) {
    try {
      await set.sources.foreground.read({ maxAgeMs: 0 });
      items.push({ id: 'foreground', status: 'clean', title: T.fgClean, details: [] });
    } catch (e) {
      items.push({ id: 'foreground', status: 'unavailable', title: T.unavailable('Window focus', e instanceof SourceUnavailable ? e.message : `error: ${errMsg(e)}`), details: [] });
    }
  }

  if (set.clipboard && cfg.clipboard !== 'off') {
    await set.clipboard.start();
    const st = set.clipboard.stats();
    items.push(st.unavailable ? { id: 'clipboard', status: 'unavailable', title: T.unavailable('Clipboard', st.unavailable), details: [] } : { id: 'clipboard', status: 'clean', title: T.clipClean, details: [] });
  }

  res.blocked = items.filter((i) => i.status === 'blocked');
  res.flagged = items.filter((i) => i.status === 'flagged');
  res.ok = res.blocked.length === 0;
  return res;
}
