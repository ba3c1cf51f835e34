// Progress of a training run: a live line on a terminal (cli-progress), plain lines otherwise.
import cliProgress from 'cli-progress';

export interface StepInfo { epoch: number; epochs: number; step: number; steps: number; loss: number; acc: number; imagesPerSecond: number }

export class Progress {
  private bar: cliProgress.SingleBar | null = null;
  constructor(private readonly live = Boolean(process.stdout.isTTY), private readonly out: (s: string) => void = console.log) {}

  startEpoch(epoch: number, epochs: number, steps: number): void {
    if (!this.live) return;
    this.bar = new cliProgress.SingleBar({
      format: `epoch ${epoch}/${epochs} [{bar}] {value}/{total} loss {loss} acc {acc} {ips} img/s ETA {eta_formatted}`,
      hideCursor: true, clearOnComplete: true,
    }, cliProgress.Presets.shades_classic);
    this.bar.start(steps, 0, { loss: '-', acc: '-', ips: '-' });
  }

  private lastRead = 0;

  /** Whether to read the running loss now (each read waits for the GPU): about once a second. */
  wantsUpdate(step: number, steps: number): boolean {
    const now = Date.now();
    if (step !== steps && now - this.lastRead < (this.live ? 1000 : 30_000)) return false;
    this.lastRead = now;
    return true;
  }

  step(s: StepInfo): void {
    const payload = { loss: s.loss.toFixed(4), acc: (100 * s.acc).toFixed(1) + '%', ips: s.imagesPerSecond.toFixed(1) };
    if (this.bar) { this.bar.update(s.step, payload); return; }
    if (s.step === s.steps) return; // the epoch's own line follows
    this.out(`epoch ${s.epoch}/${s.epochs} step ${s.step}/${s.steps} loss ${payload.loss} acc ${payload.acc} ${payload.ips} img/s`);
  }

  endEpoch(line: string): void {
    this.bar?.stop();
    this.bar = null;
    this.out(line);
  }
}
