import { describe, expect, it } from 'vitest';
import { readFileSync, existsSync } from 'node:fs';
import { assessVm, fixtureFs, linuxVmFacts, parseWindowsFacts, type VmFacts } from '../../src/main/monitors/vm.js';
import type { VmReport } from '../../src/main/monitors/events.js';

const dir = new URL('../fixtures/monitors/vm/', import.meta.url);

async function fromFixture(name: string, env: NodeJS.ProcessEnv = {}): Promise<{ facts: VmFacts; report: VmReport }> {
  const fx = JSON.parse(readFileSync(new URL(name, dir), 'utf8')) as { files: Record<string, string>; who?: string };
  const facts = await linuxVmFacts(fixtureFs(fx.files), { env, who: async () => fx.who ?? '', arch: 'x64' });
  return { facts, report: assessVm(facts) };
}

const ids = (r: VmReport, weight?: string) => r.signals.filter((s) => !weight || s.weight === weight).map((s) => s.id);

describe('VM detection from recorded/reconstructed machine facts', () => {
  it('VirtualBox: DMI, disk, PCI and NIC signals each reported, verdict likely', async () => {
    const { report } = await fromFixture('virtualbox-linux-guest.json');
    expect(report.verdict).toBe('likely');
    expect(report.hypervisor).toBe('VirtualBox');
    expect(ids(report, 'strong')).toEqual(expect.arrayContaining(['dmi.sys_vendor', 'dmi.product_name', 'disk.model', 'pci.vendor']));
    const nic = report.signals.find((s) => s.id === 'nic.oui')!;
    expect(nic.evidence).toContain('08:00:27');
    expect(nic.weight).toBe('medium');
    expect(report.signals.find((s) => s.id === 'cpu.hypervisor_flag')?.weight).toBe('weak');
    expect(report.remoteSession.own).toBe(false);
    expect(report.remoteSession.others).toBe(0);
  });

  it('VMware: vendor strings, 00:0c:29 NIC, VMware disk and vmwgfx GPU', async () => {
    const { report } = await fromFixture('vmware-linux-guest.json');
    expect(report.verdict).toBe('likely');
    expect(report.hypervisor).toBe('VMware');
    expect(ids(report)).toEqual(expect.arrayContaining(['dmi.sys_vendor', 'nic.oui', 'disk.model', 'pci.vendor', 'gpu.name']));
    expect(report.signals.find((s) => s.id === 'disk.model')!.evidence).toContain('VMware Virtual S');
  });

  it('KVM/QEMU: QEMU DMI, SeaBIOS (medium), virtio disk, 52:54:00 NIC, QEMU CPU model', async () => {
    const { report } = await fromFixture('kvm-qemu-linux-guest.json');
    expect(report.verdict).toBe('likely');
    expect(report.hypervisor).toMatch(/QEMU\/KVM/);
    const bios = report.signals.find((s) => s.id === 'dmi.bios_vendor')!;
    expect(bios.weight).toBe('medium');
    expect(ids(report)).toEqual(expect.arrayContaining(['dmi.sys_vendor', 'cpu.model', 'nic.oui', 'disk.virtio', 'pci.vendor', 'gpu.name']));
  });

  it('Hyper-V: Microsoft "Virtual Machine", Hyper-V firmware, Msft Virtual Disk, 00:15:5d, hyperv_drm', async () => {
    const { report } = await fromFixture('hyperv-linux-guest.json');
    expect(report.verdict).toBe('likely');
    expect(report.hypervisor).toBe('Hyper-V');
    expect(ids(report)).toEqual(expect.arrayContaining(['dmi.product_name', 'dmi.product_version', 'disk.model', 'nic.oui', 'gpu.name']));
  });

  it('bare-metal laptop that hosts VMs and Docker: virtual adapters are info only, verdict none', async () => {
    const { report } = await fromFixture('baremetal-thinkpad-vm-host.json');
    expect(report.verdict).toBe('none');
    expect(report.score).toBe(0);
    expect(report.hypervisor).toBeNull();
    const adapters = report.signals.filter((s) => s.id === 'nic.virtual_adapter');
    expect(adapters.map((s) => s.evidence.split(' ')[0])).toEqual(['vboxnet0', 'virbr0']);
    expect(adapters.every((s) => s.weight === 'info')).toBe(true);
    expect(report.signals.some((s) => s.kind === 'dmi' || s.kind === 'cpu' || s.kind === 'disk')).toBe(false);
  });

  it('Windows laptop with virtualization-based security: one weak signal is not a VM', () => {
    const facts = parseWindowsFacts(readFileSync(new URL('windows-dell-vbs-baremetal.json', dir), 'utf8'), { SESSIONNAME: 'Console' });
    const r = assessVm(facts);
    expect(r.verdict).toBe('unlikely');
    expect(ids(r, 'weak')).toEqual(['cpu.hypervisor_flag']);
    expect(r.signals.find((s) => s.id === 'nic.virtual_adapter')?.evidence).toContain('vEthernet');
    expect(r.remoteSession.own).toBe(false);
  });

  it('Windows Hyper-V guest reached over RDP: VM likely and the own session is remote', () => {
    const facts = parseWindowsFacts(readFileSync(new URL('windows-hyperv-guest-rdp.json', dir), 'utf8'), { SESSIONNAME: 'RDP-Tcp#3' });
    const r = assessVm(facts);
    expect(r.verdict).toBe('likely');
    expect(r.hypervisor).toBe('Hyper-V');
    expect(ids(r)).toEqual(expect.arrayContaining(['dmi.product_name', 'nic.oui', 'disk.model', 'gpu.name', 'remote.own_session']));
    expect(r.remoteSession).toMatchObject({ own: true });
  });

  it('SSH session and a remote login seen in `who` are remote signals, not VM evidence', async () => {
    const fx = JSON.parse(readFileSync(new URL('baremetal-thinkpad-vm-host.json', dir), 'utf8')) as { files: Record<string, string> };
    const facts = await linuxVmFacts(fixtureFs(fx.files), {
      env: { SSH_CONNECTION: '10.0.0.5 52144 10.0.0.9 22' }, arch: 'x64',
      who: async () => 'student  tty2         2024-05-14 09:01 (tty2)\nadmin    pts/1        2024-05-14 09:12 (10.0.0.5)\n',
    });
    const r = assessVm(facts);
    expect(r.verdict).toBe('none');
    expect(r.remoteSession.own).toBe(true);
    expect(r.remoteSession.others).toBe(1);
    expect(r.remoteSession.evidence.join('\n')).toMatch(/SSH session: 10\.0\.0\.5.*\n.*admin on pts\/1 from 10\.0\.0\.5/);
  });

  it('this build machine (recorded): a Firecracker/KVM microVM inside a container, reported signal by signal', async () => {
    const { report } = await fromFixture('firecracker-container-recorded.json');
    expect(report.container).toBe(true);
    expect(report.verdict).toBe('likely');
    expect(report.hypervisor).toMatch(/virtio|Firecracker|KVM/);
    const byId = Object.fromEntries(report.signals.map((s) => [s.id, s]));
    expect(byId['dmi.absent']?.weight).toBe('weak');
    expect(byId['cpu.hypervisor_flag']?.weight).toBe('weak');
    expect(byId['pci.vendor']?.evidence).toContain('0x1af4');
    expect(byId['kernel.cmdline']?.evidence).toMatch(/firecracker/);
    expect(byId['container.marker']?.evidence).toContain('/.dockerenv');
    // The MAC 02:fc:… is locally administered, not a hypervisor OUI: no NIC signal.
    expect(report.signals.some((s) => s.kind === 'nic')).toBe(false);
  });

  it('the real source on this machine agrees with what the machine shows', async () => {
    const r = assessVm(await linuxVmFacts());
    const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
    expect(r.signals.some((s) => s.id === 'cpu.hypervisor_flag')).toBe(/\bhypervisor\b/.test(cpuinfo));
    expect(r.signals.some((s) => s.id === 'dmi.absent')).toBe(!existsSync('/sys/class/dmi/id'));
    expect(r.container).toBe(existsSync('/.dockerenv') || existsSync('/run/.containerenv') || /docker|kubepods|lxc|containerd|libpod/.test(readFileSync('/proc/1/cgroup', 'utf8')));
  });
});
