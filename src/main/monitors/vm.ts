import { readdir, readFile, stat } from 'node:fs/promises';
import type { VmReport, VmSignal, VmWeight } from './events.js';
import { run } from './util.js';

/**
 * Virtual machine / remote session detection. Each signal is reported on its own with the raw fact it rests on
 * and a weight, and the verdict adds them up per kind of evidence: one weak signal (a hypervisor CPU flag, which
 * real Windows laptops with virtualization-based security show) never makes a "likely" verdict. Safe Exam
 * Browser's most common complaint is refusing real laptops on one such signal.
 */

/** Read access to the files the Linux checks use; `fixtureFs` replays recorded files, `recordingFs` records them. */
export interface FactFs {
  read(path: string): Promise<string | null>;
  list(dir: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
}

export const realFs: FactFs = {
  read: (p) => readFile(p, 'utf8').catch(() => null),
  list: (d) => readdir(d).catch(() => []),
  exists: (p) => stat(p).then(() => true, () => false),
};

/** Replays a recorded machine: `files` maps absolute path → content; directories are implied by the paths. */
export function fixtureFs(files: Record<string, string>): FactFs {
  const norm = (d: string) => d.replace(/\/+$/, '');
  return {
    read: async (p) => files[p] ?? null,
    list: async (d) => {
      const pre = norm(d) + '/';
      return [...new Set(Object.keys(files).filter((k) => k.startsWith(pre)).map((k) => k.slice(pre.length).split('/')[0]!))];
    },
    exists: async (p) => p in files || Object.keys(files).some((k) => k.startsWith(norm(p) + '/')),
  };
}

/** Wraps a FactFs and keeps every file it read, so a technician can send us a machine's facts as a fixture. */
export function recordingFs(inner: FactFs): FactFs & { files: Record<string, string> } {
  const files: Record<string, string> = {};
  return {
    files,
    read: async (p) => { const v = await inner.read(p); if (v !== null) files[p] = v; return v; },
    list: (d) => inner.list(d),
    exists: async (p) => { const e = await inner.exists(p); if (e && !Object.keys(files).some((k) => k.startsWith(p))) files[`${p}/.exists`] = ''; return e; },
  };
}

export interface VmFacts {
  source: string;
  arch: string;
  /** SMBIOS fields (sys_vendor, product_name, …); null when the machine has no DMI tables at all. */
  dmi: Record<string, string> | null;
  cpu: { model: string | null; hypervisorFlag: boolean | null };
  nics: { name: string; mac: string; physical: boolean }[];
  disks: { name: string; vendor: string | null; model: string | null }[];
  pci: { slot: string; vendor: string; device: string; cls: string }[];
  /** Display adapter names or kernel driver names (vboxvideo, vmwgfx, qxl, virtio_gpu, hyperv_drm …). */
  gpus: string[];
  kernelCmdline: string | null;
  /** Evidence strings for container markers (/.dockerenv, cgroup names, `container=` env). */
  container: string[];
  session: { sshConnection: string | null; display: string | null; sessionName: string | null; xrdp: boolean; who: string | null };
}

const DMI_FIELDS = ['sys_vendor', 'product_name', 'product_version', 'bios_vendor', 'bios_version', 'board_vendor', 'board_name', 'chassis_vendor'];

export async function linuxVmFacts(fs: FactFs = realFs, opts: { env?: NodeJS.ProcessEnv; who?: () => Promise<string | null>; arch?: string } = {}): Promise<VmFacts> {
  const env = opts.env ?? process.env;
  const trim = (s: string | null) => (s === null ? null : s.trim());
  let dmi: Record<string, string> | null = null;
  if (await fs.exists('/sys/class/dmi/id')) {
    dmi = {};
    for (const f of DMI_FIELDS) {
      const v = trim(await fs.read(`/sys/class/dmi/id/${f}`));
      if (v) dmi[f] = v;
    }
  }
  const cpuinfo = await fs.read('/proc/cpuinfo');
  const firstCpu = cpuinfo ? cpuinfo.split(/\n\s*\n/)[0]! : '';
  const model = /^model name\s*:\s*(.*)$/m.exec(firstCpu)?.[1]?.trim() ?? null;
  const flags = /^flags\s*:\s*(.*)$/m.exec(firstCpu)?.[1]?.split(/\s+/) ?? null;

  const nics: VmFacts['nics'] = [];
  for (const n of (await fs.list('/sys/class/net')).sort()) {
    const mac = trim(await fs.read(`/sys/class/net/${n}/address`));
    if (!mac || n === 'lo') continue;
    nics.push({ name: n, mac: mac.toLowerCase(), physical: await fs.exists(`/sys/class/net/${n}/device`) });
  }
  const disks: VmFacts['disks'] = [];
  for (const b of (await fs.list('/sys/class/block')).sort()) {
    if (/^(loop|ram|zram|dm-|md|nbd)/.test(b) || await fs.exists(`/sys/class/block/${b}/partition`)) continue;
    disks.push({ name: b, vendor: trim(await fs.read(`/sys/class/block/${b}/device/vendor`)), model: trim(await fs.read(`/sys/class/block/${b}/device/model`)) });
  }
  const pci: VmFacts['pci'] = [];
  for (const slot of (await fs.list('/sys/bus/pci/devices')).sort()) {
    const vendor = trim(await fs.read(`/sys/bus/pci/devices/${slot}/vendor`));
    if (!vendor) continue;
    pci.push({ slot, vendor: vendor.toLowerCase(), device: (trim(await fs.read(`/sys/bus/pci/devices/${slot}/device`)) ?? '').toLowerCase(), cls: (trim(await fs.read(`/sys/bus/pci/devices/${slot}/class`)) ?? '').toLowerCase() });
  }
  const gpus: string[] = [];
  for (const c of (await fs.list('/sys/class/drm')).filter((c) => /^card\d+$/.test(c)).sort()) {
    const drv = /^DRIVER=(.*)$/m.exec((await fs.read(`/sys/class/drm/${c}/device/uevent`)) ?? '')?.[1];
    if (drv) gpus.push(drv);
  }
  const container: string[] = [];
  if (await fs.exists('/.dockerenv')) container.push('/.dockerenv exists (Docker)');
  if (await fs.exists('/run/.containerenv')) container.push('/run/.containerenv exists (Podman)');
  const cg = await fs.read('/proc/1/cgroup');
  const cgm = cg ? /(docker|kubepods|containerd|lxc|libpod)[^\n]*/.exec(cg) : null;
  if (cgm) container.push(`/proc/1/cgroup: ${cgm[0].slice(0, 120)}`);
  if (env.container) container.push(`environment container=${env.container}`);
  const who = opts.who ? await opts.who() : await whoOutput();
  return {
    source: 'linux-sysfs',
    arch: opts.arch ?? process.arch,
    dmi,
    cpu: { model, hypervisorFlag: flags ? flags.includes('hypervisor') : null },
    nics, disks, pci, gpus,
    kernelCmdline: trim(await fs.read('/proc/cmdline')),
    container,
    session: { sshConnection: env.SSH_CONNECTION ?? env.SSH_CLIENT ?? (env.SSH_TTY ? `tty ${env.SSH_TTY}` : null), display: env.DISPLAY ?? null, sessionName: null, xrdp: !!(env.XRDP_SESSION || env.XRDP_SOCKET_PATH), who },
  };
}

async function whoOutput(): Promise<string | null> {
  const r = await run('who', [], { timeoutMs: 3000 });
  return r.ok ? r.stdout : null;
}

/**
 * Windows: one PowerShell/CIM query. Not exercised on this Linux build machine; its parsing is covered with a
 * recorded JSON output in the tests.
 */
export async function windowsVmFacts(env: NodeJS.ProcessEnv = process.env): Promise<VmFacts> {
  const script = [
    '$cs=Get-CimInstance Win32_ComputerSystem;$b=Get-CimInstance Win32_BIOS;$bb=Get-CimInstance Win32_BaseBoard;',
    '$p=Get-CimInstance Win32_Processor|Select-Object -First 1;',
    '$n=Get-NetAdapter -ErrorAction SilentlyContinue|Select-Object Name,MacAddress,@{n="Physical";e={$_.HardwareInterface}};',
    '$d=Get-CimInstance Win32_DiskDrive|Select-Object Model,Manufacturer,PNPDeviceID;',
    '$g=Get-CimInstance Win32_VideoController|Select-Object -ExpandProperty Name;',
    '[pscustomobject]@{cs=$cs|Select-Object Manufacturer,Model,HypervisorPresent;bios=$b|Select-Object Manufacturer,SMBIOSBIOSVersion;board=$bb|Select-Object Manufacturer,Product;cpu=$p.Name;nics=$n;disks=$d;gpus=$g}|ConvertTo-Json -Depth 4 -Compress',
  ].join('');
  const r = await run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command', script], { timeoutMs: 20_000 });
  if (!r.ok) throw new Error(r.error);
  return parseWindowsFacts(r.stdout, env);
}

interface WinJson {
  cs?: { Manufacturer?: string; Model?: string; HypervisorPresent?: boolean };
  bios?: { Manufacturer?: string; SMBIOSBIOSVersion?: string };
  board?: { Manufacturer?: string; Product?: string };
  cpu?: string;
  nics?: { Name?: string; MacAddress?: string; Physical?: boolean }[] | { Name?: string; MacAddress?: string; Physical?: boolean };
  disks?: { Model?: string; Manufacturer?: string; PNPDeviceID?: string }[] | { Model?: string; Manufacturer?: string; PNPDeviceID?: string };
  gpus?: string[] | string;
}

const arr = <T>(v: T[] | T | undefined): T[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

export function parseWindowsFacts(json: string, env: NodeJS.ProcessEnv = {}): VmFacts {
  const j = JSON.parse(json) as WinJson;
  const dmi: Record<string, string> = {};
  const put = (k: string, v: string | undefined) => { if (v) dmi[k] = v.trim(); };
  put('sys_vendor', j.cs?.Manufacturer); put('product_name', j.cs?.Model); put('bios_vendor', j.bios?.Manufacturer);
  put('bios_version', j.bios?.SMBIOSBIOSVersion); put('board_vendor', j.board?.Manufacturer); put('board_name', j.board?.Product);
  const pciFromPnp = (id?: string) => /VEN_([0-9A-F]{4})/i.exec(id ?? '')?.[1];
  return {
    source: 'windows-cim',
    arch: 'x64',
    dmi,
    cpu: { model: j.cpu ?? null, hypervisorFlag: j.cs?.HypervisorPresent ?? null },
    nics: arr(j.nics).filter((n) => n.MacAddress).map((n) => ({ name: n.Name ?? '?', mac: n.MacAddress!.toLowerCase().replaceAll('-', ':'), physical: !!n.Physical })),
    disks: arr(j.disks).map((d, i) => ({ name: `disk${i}`, vendor: d.Manufacturer ?? null, model: [d.Model, d.PNPDeviceID].filter(Boolean).join(' | ') || null })),
    pci: arr(j.disks).map((d) => pciFromPnp(d.PNPDeviceID)).filter((v): v is string => !!v).map((v, i) => ({ slot: `disk${i}`, vendor: `0x${v.toLowerCase()}`, device: '', cls: '' })),
    gpus: arr(j.gpus),
    kernelCmdline: null,
    container: [],
    session: { sshConnection: env.SSH_CONNECTION ?? env.SSH_CLIENT ?? null, display: null, sessionName: env.SESSIONNAME ?? null, xrdp: false, who: null },
  };
}

/** macOS: `sysctl` tells whether the kernel runs under a hypervisor and the model name (VMware7,1, VirtualMac2,1 …). */
export async function macVmFacts(env: NodeJS.ProcessEnv = process.env): Promise<VmFacts> {
  const r = await run('sysctl', ['-n', 'kern.hv_vmm_present', 'hw.model', 'machdep.cpu.brand_string'], { timeoutMs: 3000 });
  const [hv, model, cpu] = r.stdout.split('\n').map((s) => s.trim());
  return {
    source: 'macos-sysctl', arch: process.arch,
    dmi: model ? { product_name: model } : null,
    cpu: { model: cpu ?? null, hypervisorFlag: hv === undefined ? null : hv === '1' },
    nics: [], disks: [], pci: [], gpus: [], kernelCmdline: null, container: [],
    session: { sshConnection: env.SSH_CONNECTION ?? env.SSH_CLIENT ?? null, display: null, sessionName: null, xrdp: false, who: await whoOutput() },
  };
}

export async function defaultVmFacts(): Promise<VmFacts> {
  if (process.platform === 'win32') return windowsVmFacts();
  if (process.platform === 'darwin') return macVmFacts();
  return linuxVmFacts();
}

// ---------------------------------------------------------------------------------------------------------------
// Knowledge: what virtual hardware calls itself.

const DMI_PATTERNS: { re: RegExp; suggests: string; weight: VmWeight }[] = [
  { re: /innotek|virtualbox|\bvbox\b|oracle vm/i, suggests: 'VirtualBox', weight: 'strong' },
  { re: /vmware/i, suggests: 'VMware', weight: 'strong' },
  { re: /\bqemu\b|\bkvm\b|bochs/i, suggests: 'QEMU/KVM', weight: 'strong' },
  { re: /hyper-v/i, suggests: 'Hyper-V', weight: 'strong' },
  { re: /\bxen\b|hvm domu/i, suggests: 'Xen', weight: 'strong' },
  { re: /parallels/i, suggests: 'Parallels', weight: 'strong' },
  { re: /bhyve/i, suggests: 'bhyve', weight: 'strong' },
  { re: /google compute engine|amazon ec2|openstack|digitalocean|hetzner vserver/i, suggests: 'cloud VM', weight: 'strong' },
  { re: /virtualmac|apple virtual/i, suggests: 'Apple Virtualization', weight: 'strong' },
  { re: /^seabios$|ovmf|ef[i]? development kit ii/i, suggests: 'QEMU/KVM (virtual firmware)', weight: 'medium' },
];

export const MAC_OUIS: Record<string, string> = {
  '08:00:27': 'VirtualBox', '0a:00:27': 'VirtualBox (host-only adapter)',
  '00:05:69': 'VMware', '00:0c:29': 'VMware', '00:1c:14': 'VMware', '00:50:56': 'VMware',
  '52:54:00': 'QEMU/KVM', '00:15:5d': 'Hyper-V', '00:16:3e': 'Xen', '00:1c:42': 'Parallels', '00:03:ff': 'Microsoft Virtual PC',
};

export const PCI_VENDORS: Record<string, { name: string; weight: VmWeight }> = {
  '0x80ee': { name: 'VirtualBox', weight: 'strong' },
  '0x15ad': { name: 'VMware', weight: 'strong' },
  '0x1af4': { name: 'QEMU/KVM (virtio)', weight: 'medium' },
  '0x1b36': { name: 'QEMU/KVM', weight: 'strong' },
  '0x1414': { name: 'Hyper-V', weight: 'medium' },
  '0x5853': { name: 'Xen', weight: 'strong' },
  '0x1ab8': { name: 'Parallels', weight: 'strong' },
};

const DISK_PATTERNS: { re: RegExp; suggests: string; weight: VmWeight }[] = [
  { re: /vbox/i, suggests: 'VirtualBox', weight: 'strong' },
  { re: /vmware/i, suggests: 'VMware', weight: 'strong' },
  { re: /qemu/i, suggests: 'QEMU/KVM', weight: 'strong' },
  { re: /msft.*virtual disk|microsoft virtual disk|ven_msft&prod_virtual_disk|virtual hd|hyper-v/i, suggests: 'Hyper-V', weight: 'strong' },
  { re: /ven_1af4|0x1af4/i, suggests: 'QEMU/KVM (virtio)', weight: 'medium' },
];

const GPU_PATTERNS: { re: RegExp; suggests: string; weight: VmWeight }[] = [
  { re: /virtualbox|vboxvideo|vboxsvga|vmsvga/i, suggests: 'VirtualBox', weight: 'strong' },
  { re: /vmware|vmwgfx|svga ?3d/i, suggests: 'VMware', weight: 'strong' },
  { re: /\bqxl\b|bochs|virtio[_-]?gpu|red hat/i, suggests: 'QEMU/KVM', weight: 'strong' },
  { re: /hyper-?v|hyperv_drm|hyperv_fb/i, suggests: 'Hyper-V', weight: 'strong' },
  { re: /parallels/i, suggests: 'Parallels', weight: 'strong' },
  { re: /microsoft basic display/i, suggests: 'no GPU driver (common in VMs, also on fresh installs)', weight: 'weak' },
];

const WEIGHT_SCORE: Record<VmWeight, number> = { strong: 4, medium: 2, weak: 1, info: 0 };

/** Turns machine facts into separately reported, weighted signals and a verdict. Pure: tests feed fixtures. */
export function assessVm(f: VmFacts): VmReport {
  const s: VmSignal[] = [];
  const add = (x: VmSignal) => s.push(x);

  if (f.dmi === null) {
    if (/x64|ia32|x86/.test(f.arch)) add({ id: 'dmi.absent', kind: 'dmi', weight: 'weak', suggests: 'minimal VM or container', evidence: '/sys/class/dmi/id does not exist', note: 'Real PCs and laptops always have SMBIOS tables; minimal VMs (Firecracker) and some containers do not.' });
  } else {
    const isMsVirtual = /microsoft/i.test(f.dmi.sys_vendor ?? '') && /^virtual machine$/i.test(f.dmi.product_name ?? '');
    if (isMsVirtual) add({ id: 'dmi.product_name', kind: 'dmi', weight: 'strong', suggests: 'Hyper-V', evidence: `sys_vendor="${f.dmi.sys_vendor}", product_name="${f.dmi.product_name}"`, note: 'Hyper-V guests report Microsoft "Virtual Machine"; Surface laptops report Microsoft with a Surface model and are not flagged.' });
    for (const [k, v] of Object.entries(f.dmi)) {
      const p = DMI_PATTERNS.find((d) => d.re.test(v));
      if (p) add({ id: `dmi.${k}`, kind: 'dmi', weight: p.weight, suggests: p.suggests, evidence: `${k}="${v}"`, note: p.weight === 'strong' ? 'Firmware strings of virtual hardware.' : 'Virtual firmware used mostly by VMs; some real machines boot it too.' });
    }
  }

  if (f.cpu.hypervisorFlag) add({ id: 'cpu.hypervisor_flag', kind: 'cpu', weight: 'weak', suggests: 'hypervisor present', evidence: f.source === 'windows-cim' ? 'Win32_ComputerSystem.HypervisorPresent=True' : 'cpu flag "hypervisor"', note: 'Also set on real Windows laptops with Hyper-V, WSL2 or virtualization-based security (Windows itself runs on the hypervisor): weak on its own.' });
  if (f.cpu.model && /qemu|kvm|virtual cpu|bochs/i.test(f.cpu.model)) add({ id: 'cpu.model', kind: 'cpu', weight: 'medium', suggests: 'QEMU/KVM', evidence: `model name "${f.cpu.model}"`, note: 'A CPU model name made up by the hypervisor.' });

  for (const n of f.nics) {
    const vendor = MAC_OUIS[n.mac.slice(0, 8)];
    if (!vendor) continue;
    if (n.physical && !/host-only/.test(vendor)) add({ id: 'nic.oui', kind: 'nic', weight: 'medium', suggests: vendor, evidence: `${n.name} ${n.mac} (OUI of ${vendor})`, note: 'A network card whose maker prefix belongs to a hypervisor; MAC addresses can be changed, so not proof.' });
    else add({ id: 'nic.virtual_adapter', kind: 'nic', weight: 'info', suggests: vendor, evidence: `${n.name} ${n.mac} (virtual adapter, OUI of ${vendor})`, note: 'A virtual adapter created by VM software installed on this machine (a host), not evidence that this machine is a VM.' });
  }

  for (const d of f.disks) {
    const text = `${d.vendor ?? ''} ${d.model ?? ''}`;
    const p = DISK_PATTERNS.find((x) => x.re.test(text));
    if (/^vd[a-z]+$/.test(d.name)) add({ id: 'disk.virtio', kind: 'disk', weight: 'medium', suggests: 'QEMU/KVM (virtio)', evidence: `${d.name}: virtio block device${d.vendor ? ' vendor ' + d.vendor : ''}`, note: 'virtio disks (/dev/vd*) exist only in virtual machines.' });
    else if (/^xvd[a-z]+$/.test(d.name)) add({ id: 'disk.xen', kind: 'disk', weight: 'medium', suggests: 'Xen', evidence: `${d.name}: Xen virtual block device`, note: 'xvd* disks exist only in Xen guests.' });
    else if (p) add({ id: 'disk.model', kind: 'disk', weight: p.weight, suggests: p.suggests, evidence: `${d.name}: ${text.trim()}`, note: 'The disk model is the virtual disk of a hypervisor.' });
  }

  const pciSeen = new Map<string, string[]>();
  for (const p of f.pci) if (PCI_VENDORS[p.vendor]) pciSeen.set(p.vendor, [...(pciSeen.get(p.vendor) ?? []), `${p.slot} ${p.vendor}:${p.device}${p.cls ? ' class ' + p.cls : ''}`]);
  for (const [v, list] of pciSeen) {
    const pv = PCI_VENDORS[v]!;
    add({ id: `pci.vendor`, kind: 'pci', weight: pv.weight, suggests: pv.name, evidence: `${list.length} PCI device(s) of vendor ${v}: ${list.slice(0, 4).join('; ')}${list.length > 4 ? '; …' : ''}`, note: 'Devices emulated by a hypervisor.' });
  }

  for (const g of f.gpus) {
    const p = GPU_PATTERNS.find((x) => x.re.test(g));
    if (p) add({ id: 'gpu.name', kind: 'gpu', weight: p.weight, suggests: p.suggests, evidence: `display adapter "${g}"`, note: p.weight === 'weak' ? 'A generic display driver; real machines show it until the vendor driver is installed.' : 'The display adapter of a hypervisor.' });
  }

  if (f.kernelCmdline) {
    const words = [...new Set([...f.kernelCmdline.matchAll(/firecracker|kvm-clock|xen|hyperv/gi)].map((m) => m[0].toLowerCase()))];
    if (words.length) add({ id: 'kernel.cmdline', kind: 'kernel', weight: 'medium', suggests: words.includes('firecracker') ? 'Firecracker (KVM)' : words.includes('kvm-clock') ? 'QEMU/KVM' : words[0]!, evidence: `/proc/cmdline mentions ${words.map((w) => `"${w}"`).join(', ')}`, note: 'The kernel was booted with settings that only make sense inside a VM.' });
  }

  for (const c of f.container) add({ id: 'container.marker', kind: 'container', weight: 'info', suggests: 'container', evidence: c, note: 'Running inside a container: isolation on the same host, not by itself a VM.' });

  // Remote sessions: reported here, weighed separately (they do not make a VM).
  const remoteEvidence: string[] = [];
  let own = false;
  if (f.session.sshConnection) { own = true; remoteEvidence.push(`SSH session: ${f.session.sshConnection}`); }
  if (f.session.sessionName && /^rdp-/i.test(f.session.sessionName)) { own = true; remoteEvidence.push(`SESSIONNAME=${f.session.sessionName} (Remote Desktop)`); }
  if (f.session.xrdp) { own = true; remoteEvidence.push('XRDP session environment'); }
  if (f.session.display && /^(localhost|[\w.-]+):\d{2,}/.test(f.session.display) && !/^:/.test(f.session.display)) { own = true; remoteEvidence.push(`DISPLAY=${f.session.display} (forwarded X11)`); }
  let others = 0;
  for (const line of (f.session.who ?? '').split('\n')) {
    const m = /^(\S+)\s+(\S+)\s+.*\(([^)]+)\)\s*$/.exec(line);
    if (m && !/^(:|tty|pts\/|console|seat)/.test(m[3]!) && m[3] !== 'localhost') { others++; remoteEvidence.push(`logged in remotely: ${m[1]} on ${m[2]} from ${m[3]}`); }
  }
  for (const e of remoteEvidence) add({ id: own && !e.startsWith('logged in') ? 'remote.own_session' : 'remote.other_login', kind: 'remote', weight: own && !e.startsWith('logged in') ? 'strong' : 'medium', suggests: 'remote session', evidence: e, note: e.startsWith('logged in') ? 'Someone else is logged in to this computer over the network.' : 'Kuzet itself runs in a remote session: the screen may be seen or driven from elsewhere.' });

  // Verdict: per kind of evidence, the strongest signal counts once (five VirtualBox strings are one fact).
  const best = new Map<string, number>();
  for (const x of s) if (x.kind !== 'container' && x.kind !== 'remote') best.set(x.kind, Math.max(best.get(x.kind) ?? 0, WEIGHT_SCORE[x.weight]));
  const score = [...best.values()].reduce((a, b) => a + b, 0);
  const verdict: VmReport['verdict'] = score >= 4 ? 'likely' : score >= 2 ? 'possible' : score >= 1 ? 'unlikely' : 'none';
  const votes = new Map<string, number>();
  for (const x of s) if ((x.weight === 'strong' || x.weight === 'medium') && x.kind !== 'container' && x.kind !== 'remote') votes.set(x.suggests, (votes.get(x.suggests) ?? 0) + WEIGHT_SCORE[x.weight]);
  const hypervisor = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? null;
  return { verdict, score, hypervisor: verdict === 'likely' || verdict === 'possible' ? hypervisor : null, container: f.container.length > 0, remoteSession: { own, others, evidence: remoteEvidence }, signals: s };
}
