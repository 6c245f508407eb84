import type { DenyEntryConfig } from '../core/config.js';

type Entry = Omit<DenyEntryConfig, 'paths'> & { paths?: string[] };

const remote = (name: string, match: string[], paths: string[] = []): Entry => ({ name, match, paths, category: 'remote', policy: 'terminate' });
const messenger = (name: string, match: string[], paths: string[] = []): Entry => ({ name, match, paths, category: 'messenger', policy: 'terminate' });
const capture = (name: string, match: string[], paths: string[] = []): Entry => ({ name, match, paths, category: 'capture', policy: 'terminate' });
const browser = (name: string, match: string[], paths: string[] = []): Entry => ({ name, match, paths, category: 'browser', policy: 'flag' });
const vm = (name: string, match: string[], paths: string[] = []): Entry => ({ name, match, paths, category: 'vm', policy: 'flag' });

/**
 * The built-in deny list. Names are executable names without ".exe", compared case-insensitively with the
 * process name, the executable's file name and argv[0]; `paths` are install-folder fragments compared with the
 * executable path, so a renamed copy in the usual folder still matches. Remote-control, messenger and capture
 * tools are terminated; other browsers and VM guest tools are flagged (the foreground monitor shows whether they
 * were used; VM tools also feed the VM check). An exam replaces it with `monitors.deny` or extends it with
 * `monitors.denyExtra`.
 */
export const DEFAULT_DENY: Entry[] = [
  remote('AnyDesk', ['anydesk'], ['/anydesk/', '\\anydesk\\']),
  remote('TeamViewer', ['teamviewer', 'teamviewer_service', 'teamviewerd', 'tv_w32', 'tv_x64'], ['/teamviewer/', '\\teamviewer\\']),
  remote('ToDesk', ['todesk', 'todesk_service', 'todesk_session'], ['\\todesk\\', '/todesk/']),
  remote('RustDesk', ['rustdesk'], ['/rustdesk/', '\\rustdesk\\']),
  remote('VNC', ['vncviewer', 'vncserver', 'x11vnc', 'xvnc', 'xtigervnc', 'tigervnc', 'winvnc', 'tvnserver', 'tvnviewer', 'vncserver-x11', 'vncserver-x11-core', 'vncagent', 'ultravnc'], ['\\realvnc\\', '\\tightvnc\\', '\\ultravnc\\', '/realvnc/']),
  remote('Chrome Remote Desktop', ['remoting_host', 'remoting_desktop', 'chrome-remote-desktop-host', 'remoting_native_messaging_host'], ['/chrome-remote-desktop/', '\\chrome remote desktop\\']),
  remote('Parsec', ['parsecd', 'parsec'], ['\\parsec\\']),
  remote('Splashtop', ['srserver', 'srmanager', 'strwinclt', 'splashtop'], ['\\splashtop\\']),
  remote('AnyViewer', ['anyviewer', 'rcservice'], ['\\anyviewer\\']),
  remote('Ammyy Admin', ['aa_v3', 'ammyy_admin']),
  remote('Supremo', ['supremo', 'supremoservice']),
  remote('RemotePC', ['remotepcservice', 'remotepc']),
  remote('LogMeIn', ['logmein', 'lmiguardiansvc'], ['\\logmein\\']),
  remote('Sunlogin', ['sunloginclient', 'sunlogin'], ['\\oray\\sunlogin']),
  remote('HopToDesk', ['hoptodesk']),
  remote('Remote desktop client', ['mstsc', 'remmina', 'krdc', 'xfreerdp', 'wlfreerdp', 'vinagre', 'gnome-connections']),
  remote('Zoho Assist', ['zohoassist', 'zaservice']),
  messenger('Telegram', ['telegram', 'telegram-desktop', 'ayugram', 'kotatogram'], ['/telegram', '\\telegram desktop\\']),
  messenger('WhatsApp', ['whatsapp', 'whatsapp.root'], ['\\whatsapp\\']),
  messenger('Discord', ['discord', 'discordcanary', 'discordptb'], ['/discord/', '\\discord\\']),
  messenger('Skype', ['skype', 'skypeforlinux', 'skypeapp'], ['\\skype\\']),
  messenger('Slack', ['slack'], ['\\slack\\']),
  messenger('Viber', ['viber'], ['\\viber\\']),
  messenger('Signal', ['signal', 'signal-desktop'], ['\\signal\\']),
  messenger('Zoom', ['zoom', 'zoom.us', 'zoomwebhost'], ['\\zoom\\bin\\']),
  messenger('Microsoft Teams', ['teams', 'ms-teams', 'teams-for-linux'], ['\\microsoft\\teams\\']),
  messenger('WeChat', ['wechat', 'weixin']),
  messenger('Element', ['element-desktop']),
  capture('OBS Studio', ['obs', 'obs64', 'obs32', 'obs-studio'], ['\\obs-studio\\', '/obs-studio/']),
  capture('ShareX', ['sharex'], ['\\sharex\\']),
  capture('NVIDIA ShadowPlay', ['nvsphelper64', 'nvsphelper', 'nvcontainer-share'], ['\\nvidia corporation\\shadowplay\\']),
  capture('Bandicam', ['bdcam', 'bandicam']),
  capture('Camtasia', ['camtasiastudio', 'camtasia', 'camrecorder']),
  capture('Snagit', ['snagit32', 'snagiteditor', 'snagit']),
  capture('Screen recorder', ['simplescreenrecorder', 'kazam', 'vokoscreen', 'vokoscreenng', 'peek', 'recordmydesktop', 'gpu-screen-recorder', 'kooha']),
  capture('Screenshot tool', ['flameshot', 'greenshot', 'lightshot', 'ksnip']),
  capture('Loom', ['loom']),
  capture('Xbox Game Bar', ['gamebar', 'gamebarftserver']),
  browser('Google Chrome', ['chrome', 'google-chrome', 'google-chrome-stable'], ['\\google\\chrome\\', '/opt/google/chrome/']),
  browser('Chromium', ['chromium', 'chromium-browser']),
  browser('Mozilla Firefox', ['firefox', 'firefox-esr', 'firefox-bin'], ['\\mozilla firefox\\']),
  browser('Microsoft Edge', ['msedge', 'microsoft-edge', 'microsoft-edge-stable'], ['\\microsoft\\edge\\']),
  browser('Opera', ['opera', 'opera_gx'], ['\\opera\\', '\\opera gx\\']),
  browser('Brave', ['brave', 'brave-browser']),
  browser('Vivaldi', ['vivaldi', 'vivaldi-bin']),
  browser('Yandex Browser', ['yandex', 'yandex_browser'], ['\\yandex\\yandexbrowser\\', '/opt/yandex/browser']),
  browser('Tor Browser', ['tor', 'torbrowser']),
  browser('Safari', ['safari']),
  vm('VirtualBox Guest Additions', ['vboxservice', 'vboxtray', 'vboxclient', 'vboxcontrol']),
  vm('VMware Tools', ['vmtoolsd', 'vmwaretray', 'vmwareuser', 'vmware-user', 'vmacthlp']),
  vm('QEMU/KVM guest agent', ['qemu-ga', 'spice-vdagent', 'spice-vdagentd']),
  vm('Hyper-V integration', ['vmicsvc', 'hv_kvp_daemon', 'hv_vss_daemon']),
  vm('Parallels Tools', ['prl_tools', 'prl_cc', 'prltoolsd']),
];
