/**
 * Raw-frame taps. ffmpeg writes rgb24 frames to a pipe; `FrameSplitter` cuts the byte stream into frames and
 * `TapHub` hands them to any number of subscribers. The pipe is always read at once (ffmpeg never waits for a
 * detector): each subscriber keeps only its newest `depth` frames and older ones are dropped and counted.
 */
import type { SourceId } from '../core/config.js';
import type { Frame } from '../core/context.js';

export class FrameSplitter {
  private buf: Buffer;
  private fill = 0;
  private n = 0;
  readonly frameBytes: number;

  constructor(
    private readonly source: SourceId,
    private readonly width: number,
    private readonly height: number,
    private readonly fps: number,
    /** Seconds since session start of this run's stream time 0 (read per frame: it is refined once ffmpeg says its clock started). */
    private readonly offset: () => number,
    private readonly onFrame: (f: Frame) => void,
  ) {
    this.frameBytes = width * height * 3;
    this.buf = Buffer.allocUnsafe(this.frameBytes);
  }

  get frames(): number {
    return this.n;
  }

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(this.frameBytes - this.fill, chunk.length - off);
      chunk.copy(this.buf, this.fill, off, off + take);
      this.fill += take;
      off += take;
      if (this.fill === this.frameBytes) {
        const data = this.buf;
        this.buf = Buffer.allocUnsafe(this.frameBytes);
        this.fill = 0;
        const pts = Math.round((this.offset() + this.n / this.fps) * 1000) / 1000;
        this.n++;
        this.onFrame({ source: this.source, width: this.width, height: this.height, data, pts, wall: Date.now() });
      }
    }
  }
}

interface Subscriber {
  queue: Frame[];
  waiter: ((r: IteratorResult<Frame>) => void) | null;
  dropped: number;
}

export interface TapStats { produced: number; delivered: number; dropped: number; subscribers: number }

export class TapHub {
  private readonly subs = new Set<Subscriber>();
  private produced = 0;
  private delivered = 0;
  private dropped = 0;
  private ended = false;

  constructor(readonly depth = 3) {}

  push(frame: Frame): void {
    if (this.ended) return;
    this.produced++;
    for (const s of this.subs) {
      if (s.waiter) {
        const w = s.waiter;
        s.waiter = null;
        this.delivered++;
        w({ value: frame, done: false });
      } else {
        s.queue.push(frame);
        if (s.queue.length > this.depth) {
          s.queue.shift();
          s.dropped++;
          this.dropped++;
        }
      }
    }
  }

  /** Ends every iteration (recorder stopped). Queued frames are still handed out first. */
  end(): void {
    this.ended = true;
    for (const s of this.subs) {
      if (s.waiter) { const w = s.waiter; s.waiter = null; w({ value: undefined, done: true }); }
    }
  }

  stats(): TapStats {
    return { produced: this.produced, delivered: this.delivered, dropped: this.dropped, subscribers: this.subs.size };
  }

  iterable(): AsyncIterable<Frame> {
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<Frame> => {
        const sub: Subscriber = { queue: [], waiter: null, dropped: 0 };
        this.subs.add(sub);
        const finish = (): IteratorResult<Frame> => { this.subs.delete(sub); sub.queue.length = 0; return { value: undefined, done: true }; };
        return {
          next: () => {
            const f = sub.queue.shift();
            if (f) { this.delivered++; return Promise.resolve({ value: f, done: false }); }
            if (this.ended || !this.subs.has(sub)) return Promise.resolve(finish());
            return new Promise((resolve) => { sub.waiter = resolve; });
          },
          return: () => {
            if (sub.waiter) { const w = sub.waiter; sub.waiter = null; w({ value: undefined, done: true }); }
            return Promise.resolve(finish());
          },
        };
      },
    };
  }
}
