/**
 * Voice-activity detection on the microphone track: energy and spectrum, no model. Speech has most of its
 * energy in the 300–3400 Hz band, a peaky (non-flat) spectrum and a level well above the room's noise floor;
 * fans and hum are flat or narrow, keyboards are short. Frames of 32 ms are classified, a 1-s window votes, and
 * sustained speech becomes an `audio.voice` episode a proctor then listens to. Pure logic over PCM samples.
 */

export interface VoiceConfig {
  sampleRate: number;
  /** dB above the tracked noise floor a frame must be to count as speech */
  marginDb: number;
  /** minimum share of frame energy in the speech band */
  bandRatio: number;
  /** maximum spectral flatness (0 = a pure tone, 1 = white noise) */
  maxFlatness: number;
  /** share of speech frames in the last second that makes that second "speech" */
  windowShare: number;
  /** speech must last this long to be an episode */
  minSeconds: number;
  /** an episode ends after this much non-speech */
  endGraceSeconds: number;
  /** absolute floor: quieter frames are never speech (dBFS) */
  minDbfs: number;
}

export const DEFAULT_VOICE: VoiceConfig = {
  sampleRate: 16000, marginDb: 12, bandRatio: 0.55, maxFlatness: 0.45, windowShare: 0.4, minSeconds: 3, endGraceSeconds: 1.5, minDbfs: -55,
};

const FRAME = 512; // 32 ms at 16 kHz

/** In-place iterative radix-2 FFT; returns the power spectrum of the first n/2 bins. */
export function powerSpectrum(frame: Float64Array): Float64Array {
  const n = frame.length;
  const re = Float64Array.from(frame);
  const im = new Float64Array(n);
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) { const t = re[i]!; re[i] = re[j]!; re[j] = t; }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    const wr = Math.cos(ang);
    const wi = Math.sin(ang);
    for (let i = 0; i < n; i += len) {
      let cr = 1;
      let ci = 0;
      for (let k = 0; k < len / 2; k++) {
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b]! * cr - im[b]! * ci;
        const xi = re[b]! * ci + im[b]! * cr;
        re[b] = re[a]! - xr; im[b] = im[a]! - xi;
        re[a] = re[a]! + xr; im[a] = im[a]! + xi;
        const ncr = cr * wr - ci * wi;
        ci = cr * wi + ci * wr;
        cr = ncr;
      }
    }
  }
  const out = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) out[k] = re[k]! * re[k]! + im[k]! * im[k]!;
  return out;
}

export interface FrameFeatures {
  dbfs: number;
  bandRatio: number;
  flatness: number;
  /** share of the speech band's energy in its 3 strongest bins: ~1 for a whistle or beep, far lower for a voice */
  toneRatio: number;
}

const HANN = Float64Array.from({ length: FRAME }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / (FRAME - 1)));

export function frameFeatures(samples: Int16Array, offset: number, sampleRate: number): FrameFeatures {
  const x = new Float64Array(FRAME);
  let sum = 0;
  for (let i = 0; i < FRAME; i++) {
    const v = samples[offset + i]! / 32768;
    sum += v * v;
    x[i] = v * HANN[i]!;
  }
  const dbfs = 10 * Math.log10(sum / FRAME + 1e-12);
  const p = powerSpectrum(x);
  const hz = sampleRate / FRAME;
  let total = 0, band = 0, logSum = 0, count = 0;
  for (let k = 1; k < p.length; k++) {
    const f = k * hz;
    const v = p[k]! + 1e-12;
    total += v;
    if (f >= 300 && f <= 3400) band += v;
    if (f >= 100 && f <= 4000) { logSum += Math.log(v); count++; }
  }
  let arith = 0;
  for (let k = 1; k < p.length; k++) { const f = k * hz; if (f >= 100 && f <= 4000) arith += p[k]! + 1e-12; }
  arith /= Math.max(1, count);
  const flatness = count ? Math.exp(logSum / count) / arith : 1;
  const lo = Math.ceil(300 / hz);
  const hi = Math.min(p.length - 1, Math.floor(3400 / hz));
  const top = Array.from(p.subarray(lo, hi + 1)).sort((a, b) => b - a).slice(0, 3).reduce((a, b) => a + b, 0);
  return { dbfs, bandRatio: band / total, flatness, toneRatio: band > 0 ? top / band : 1 };
}

export interface VoiceEpisode { start: number; end: number; speechSeconds: number; peakDbfs: number }

/**
 * Streaming detector: feed PCM chunks (mono s16, `sampleRate`) with their start time in seconds; it returns the
 * episodes that closed. Keeps state across chunks (segments), so speech across a segment boundary is one episode.
 */
export class VoiceDetector {
  private readonly c: VoiceConfig;
  private rest = new Int16Array(0);
  private t = 0;
  private started = false;
  /** Frame levels of the last few seconds: their minimum is the noise floor (minimum statistics). */
  private levels: number[] = [];
  private window: boolean[] = [];
  private open: { start: number; lastSpeech: number; speech: number; peak: number } | null = null;
  private runStart: number | null = null;
  private lastSpeechT = -Infinity;
  frames = 0;
  speechFrames = 0;

  constructor(cfg: Partial<VoiceConfig> = {}) {
    this.c = { ...DEFAULT_VOICE, ...cfg };
  }

  push(pcm: Int16Array, startSeconds?: number): VoiceEpisode[] {
    if (startSeconds !== undefined && (!this.started || Math.abs(startSeconds - (this.t + this.rest.length / this.c.sampleRate)) > 0.25)) {
      // First chunk, or a gap (a recorder restart): continue from the chunk's own time.
      this.t = startSeconds;
      this.rest = new Int16Array(0);
    }
    this.started = true;
    const all = new Int16Array(this.rest.length + pcm.length);
    all.set(this.rest);
    all.set(pcm, this.rest.length);
    const out: VoiceEpisode[] = [];
    const dt = FRAME / this.c.sampleRate;
    let off = 0;
    for (; off + FRAME <= all.length; off += FRAME) {
      const f = frameFeatures(all, off, this.c.sampleRate);
      // Noise floor: the quietest frame of the last ~3 s (speech has pauses between words; steady noise does not).
      this.levels.push(f.dbfs);
      if (this.levels.length > 100) this.levels.shift();
      const noise = Math.min(...this.levels);
      const speech = f.dbfs > this.c.minDbfs && f.dbfs > noise + this.c.marginDb && f.bandRatio >= this.c.bandRatio && f.flatness <= this.c.maxFlatness && f.toneRatio <= 0.8;
      this.frames++;
      if (speech) this.speechFrames++;
      this.window.push(speech);
      if (this.window.length > Math.round(1 / dt)) this.window.shift();
      const active = this.window.filter(Boolean).length >= this.c.windowShare * this.window.length && this.window.length * dt >= 0.9;
      const now = this.t;
      if (active) {
        this.lastSpeechT = now + dt;
        this.runStart ??= now - (this.window.length - 1) * dt;
        if (this.open) {
          this.open.lastSpeech = now + dt;
          this.open.speech += speech ? dt : 0;
          this.open.peak = Math.max(this.open.peak, f.dbfs);
        } else if (now + dt - this.runStart >= this.c.minSeconds) {
          this.open = { start: this.runStart, lastSpeech: now + dt, speech: this.c.minSeconds * this.c.windowShare, peak: f.dbfs };
        }
      } else if (now - this.lastSpeechT >= this.c.endGraceSeconds) {
        this.runStart = null;
        if (this.open) out.push(this.close());
      }
      this.t += dt;
    }
    this.rest = all.slice(off);
    return out;
  }

  get isOpen(): boolean {
    return this.open !== null;
  }

  /** The episode in progress, as it stands now (for `episode.started`). */
  get current(): { start: number } | null {
    return this.open ? { start: this.open.start } : null;
  }

  flush(): VoiceEpisode[] {
    return this.open ? [this.close()] : [];
  }

  private close(): VoiceEpisode {
    const o = this.open!;
    this.open = null;
    return { start: r2(o.start), end: r2(o.lastSpeech), speechSeconds: r2(o.speech), peakDbfs: r2(o.peak) };
  }
}

const r2 = (v: number) => Math.round(v * 100) / 100;
