/**
 * The rules stage: turns per-frame detector results into evidence *episodes* a proctor can act on — no face for
 * more than N s, several faces, head turned away (long, or again and again), a phone seen in k of n frames, an
 * extra person or a book on the room camera. Pure logic: no I/O, no clock of its own (times are the frames' pts),
 * so it is fully unit-testable and replayable over a bundle's raw scores with other thresholds.
 *
 * Conventions (from the detector): yaw > 0 = the nose points to the image's right; pitch > 0 = head down.
 */

export type Camera = 'face' | 'room';

export interface FrameFace { score: number; yaw?: number; pitch?: number }
export interface FrameObject { label: string; score: number }
export interface FrameResult {
  camera: Camera;
  /** seconds since the session started */
  t: number;
  faces?: FrameFace[];
  objects?: FrameObject[];
}

export type EpisodeType =
  | 'face.absent'
  | 'face.multiple'
  | 'head.away'
  | 'head.away.repeated'
  | 'object.phone'
  | 'object.book'
  | 'person.extra';

export interface RulesConfig {
  faceScore: number;
  objectScore: number;
  noFaceSeconds: number;
  multiFaceSeconds: number;
  headAwayYawDeg: number;
  headDownPitchDeg: number;
  headAwaySeconds: number;
  /** Short glances away: this many within `repeatedWindowSeconds` make a `head.away.repeated` episode. */
  repeatedCount: number;
  repeatedWindowSeconds: number;
  phoneVotes: { k: number; n: number };
  extraPersonSeconds: number;
  /** An episode ends after its condition has been false this long (hysteresis against flicker). */
  endGraceSeconds: number;
  /**
   * The student's own "looking at the screen" pose: the median yaw/pitch of the first this-many analysed frames
   * that look at the screen by the absolute thresholds (0 = off). A camera mounted above or below the screen shifts
   * every pitch; angles are judged relative to this baseline, clamped to ±`baselineMaxDeg` so that no posture can
   * move the effective threshold far.
   */
  baselineFrames: number;
  baselineMaxDeg: number;
}

export const DEFAULT_RULES: RulesConfig = {
  faceScore: 0.5,
  objectScore: 0.35,
  noFaceSeconds: 5,
  multiFaceSeconds: 2,
  headAwayYawDeg: 30,
  headDownPitchDeg: 25,
  headAwaySeconds: 5,
  repeatedCount: 4,
  repeatedWindowSeconds: 60,
  phoneVotes: { k: 3, n: 6 },
  extraPersonSeconds: 3,
  endGraceSeconds: 1.5,
  baselineFrames: 25,
  baselineMaxDeg: 15,
};

export interface EpisodeStart { kind: 'start'; id: string; type: EpisodeType; camera: Camera; start: number; score: number; detail: Record<string, unknown> }
export interface EpisodeEnd {
  kind: 'end'; id: string; type: EpisodeType; camera: Camera; start: number; end: number; duration: number;
  peakScore: number; peakT: number; frames: number; detail: Record<string, unknown>;
}
export type EpisodeEvent = EpisodeStart | EpisodeEnd;

/**
 * One condition with hysteresis. Duration mode: it opens once it has held `minSeconds` (brief dropouts shorter
 * than `grace` do not reset it) and closes once it has been false for `grace`. Vote mode (k of n frames): it opens
 * when k of the last n frames are positive, starting at the first of them, and closes when none of the last n is.
 */
class Tracker {
  private since: number | null = null;
  private lastTrue: number | null = null;
  private window: { t: number; raw: boolean }[] = [];
  private open: { id: string; start: number; peak: number; peakT: number; frames: number; detail: Record<string, unknown> } | null = null;

  constructor(
    readonly type: EpisodeType,
    readonly camera: Camera,
    private readonly minSeconds: number,
    private readonly grace: number,
    private readonly vote: { k: number; n: number } | null,
    private readonly nextId: () => string,
  ) {}

  get isOpen(): boolean {
    return this.open !== null;
  }

  update(t: number, raw: boolean, score: number, detail: Record<string, unknown>): EpisodeEvent[] {
    if (raw) this.lastTrue = t;
    let opening: boolean;
    let closing = false;
    let start: number;
    if (this.vote) {
      this.window.push({ t, raw });
      if (this.window.length > this.vote.n) this.window.shift();
      const hits = this.window.filter((w) => w.raw);
      opening = !this.open && hits.length >= this.vote.k;
      start = hits[0]?.t ?? t;
      closing = !!this.open && hits.length === 0;
    } else {
      if (raw && this.since === null) this.since = t;
      const lapsed = !raw && this.lastTrue !== null && t - this.lastTrue >= this.grace;
      if (lapsed || (!raw && this.lastTrue === null)) {
        closing = !!this.open;
        if (!this.open) this.since = null;
      }
      opening = !this.open && raw && this.since !== null && t - this.since >= this.minSeconds;
      start = this.since ?? t;
    }
    if (this.open && raw) {
      this.open.frames++;
      if (score > this.open.peak) { this.open.peak = score; this.open.peakT = t; this.open.detail = detail; }
    }
    if (opening) {
      this.open = { id: this.nextId(), start, peak: score, peakT: t, frames: 1, detail };
      return [{ kind: 'start', id: this.open.id, type: this.type, camera: this.camera, start, score, detail }];
    }
    return closing ? [this.close()] : [];
  }

  close(): EpisodeEnd {
    const o = this.open!;
    const end = Math.max(o.start, this.lastTrue ?? o.start);
    this.open = null;
    this.since = null;
    this.window = [];
    return {
      kind: 'end', id: o.id, type: this.type, camera: this.camera, start: o.start, end, duration: round3(end - o.start),
      peakScore: round3(o.peak), peakT: o.peakT, frames: o.frames, detail: o.detail,
    };
  }
}

export class EpisodeRules {
  private readonly cfg: RulesConfig;
  private n = 0;
  private readonly trackers = new Map<string, Tracker>();
  private readonly glances: number[] = [];
  private lastAway = false;
  private repeatedOpenUntil = -Infinity;
  private readonly calib: { yaw: number; pitch: number }[] = [];
  private baseline = { yaw: 0, pitch: 0 };

  /** The pose baseline in use (0/0 until calibrated). */
  get poseBaseline(): { yaw: number; pitch: number; frames: number } {
    return { ...this.baseline, frames: this.calib.length };
  }

  private calibrate(yaw: number, pitch: number): void {
    const c = this.cfg;
    // Only frames that already look at the screen by the absolute thresholds calibrate.
    if (this.calib.length >= c.baselineFrames || Math.abs(yaw) > c.headAwayYawDeg || Math.abs(pitch) > c.headDownPitchDeg) return;
    this.calib.push({ yaw, pitch });
    if (this.calib.length === c.baselineFrames) {
      const med = (xs: number[]) => { const v = xs.slice().sort((a, b) => a - b); return v[v.length >> 1]!; };
      const clamp = (v: number) => Math.max(-c.baselineMaxDeg, Math.min(c.baselineMaxDeg, v));
      this.baseline = { yaw: clamp(med(this.calib.map((x) => x.yaw))), pitch: clamp(med(this.calib.map((x) => x.pitch))) };
    }
  }

  constructor(cfg: Partial<RulesConfig> = {}, private readonly idPrefix = 'ep') {
    this.cfg = { ...DEFAULT_RULES, ...cfg, phoneVotes: { ...DEFAULT_RULES.phoneVotes, ...(cfg.phoneVotes ?? {}) } };
  }

  private tracker(type: EpisodeType, camera: Camera, minSeconds: number, vote: { k: number; n: number } | null = null): Tracker {
    const key = `${type}@${camera}`;
    let tr = this.trackers.get(key);
    if (!tr) {
      tr = new Tracker(type, camera, minSeconds, this.cfg.endGraceSeconds, vote, () => `${this.idPrefix}-${String(++this.n).padStart(4, '0')}`);
      this.trackers.set(key, tr);
    }
    return tr;
  }

  /** Feeds one analysed frame; returns the episodes it opens or closes. */
  push(f: FrameResult): EpisodeEvent[] {
    const c = this.cfg;
    const out: EpisodeEvent[] = [];
    const objects = (f.objects ?? []).filter((o) => o.score >= c.objectScore || (o.label === 'cell phone' && o.score >= Math.min(c.objectScore, 0.3)));
    const best = (label: string) => objects.filter((o) => o.label === label).reduce((m, o) => Math.max(m, o.score), 0);

    if (f.faces) {
      const faces = f.faces.filter((x) => x.score >= c.faceScore);
      if (f.camera === 'face') {
        out.push(...this.tracker('face.absent', 'face', c.noFaceSeconds).update(f.t, faces.length === 0, 1, { faces: faces.length }));
        out.push(...this.tracker('face.multiple', 'face', c.multiFaceSeconds).update(f.t, faces.length > 1, faces.length, { faces: faces.length }));
        // Head pose of the main (largest-score) face.
        const main = faces.slice().sort((a, b) => b.score - a.score)[0];
        if (main && main.yaw !== undefined && main.pitch !== undefined) this.calibrate(main.yaw, main.pitch);
        // Angles relative to the student's own baseline (camera above/below or beside the screen).
        const yaw = (main?.yaw ?? 0) - this.baseline.yaw;
        const pitch = (main?.pitch ?? 0) - this.baseline.pitch;
        const away = !!main && (Math.abs(yaw) > c.headAwayYawDeg || pitch > c.headDownPitchDeg);
        const severity = main ? Math.max(Math.abs(yaw) / c.headAwayYawDeg, pitch / c.headDownPitchDeg) : 0;
        const dir = !main ? null : pitch > c.headDownPitchDeg && Math.abs(yaw) <= c.headAwayYawDeg ? 'down' : yaw > 0 ? 'right' : 'left';
        out.push(...this.tracker('head.away', 'face', c.headAwaySeconds).update(f.t, away, severity, {
          yaw: round1(main?.yaw ?? 0), pitch: round1(main?.pitch ?? 0), direction: dir,
          baseline: { yaw: round1(this.baseline.yaw), pitch: round1(this.baseline.pitch) },
        }));
        // Repeated short glances: count away-onsets within the window.
        if (away && !this.lastAway) this.glances.push(f.t);
        this.lastAway = away;
        while (this.glances.length && this.glances[0]! < f.t - c.repeatedWindowSeconds) this.glances.shift();
        if (this.glances.length >= c.repeatedCount && f.t > this.repeatedOpenUntil) {
          const id = `${this.idPrefix}-${String(++this.n).padStart(4, '0')}`;
          const start = this.glances[0]!;
          out.push({ kind: 'start', id, type: 'head.away.repeated', camera: 'face', start, score: this.glances.length, detail: { glances: this.glances.length, windowSeconds: c.repeatedWindowSeconds } });
          out.push({ kind: 'end', id, type: 'head.away.repeated', camera: 'face', start, end: f.t, duration: f.t - start, peakScore: this.glances.length, peakT: f.t, frames: this.glances.length, detail: { glances: [...this.glances] } });
          this.repeatedOpenUntil = f.t + c.repeatedWindowSeconds;
          this.glances.length = 0;
        }
      }
    }
    if (f.objects) {
      const phone = best('cell phone');
      const tr = this.tracker('object.phone', f.camera, 0, c.phoneVotes);
      out.push(...tr.update(f.t, phone > 0, phone, { score: round3(phone) }));
      if (f.camera === 'room') {
        const book = best('book');
        out.push(...this.tracker('object.book', 'room', 0, c.phoneVotes).update(f.t, book > 0, book, { score: round3(book) }));
        const persons = objects.filter((o) => o.label === 'person').length;
        out.push(...this.tracker('person.extra', 'room', c.extraPersonSeconds).update(f.t, persons > 1, persons, { persons }));
      }
    }
    return out;
  }

  /** Closes every open episode (end of the session). */
  flush(): EpisodeEnd[] {
    const out: EpisodeEnd[] = [];
    for (const tr of this.trackers.values()) if (tr.isOpen) out.push(tr.close());
    return out;
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
const round3 = (v: number) => Math.round(v * 1000) / 1000;
