// Training progress on stderr: a bar redrawn in place on a terminal, one plain line per epoch otherwise
// (logs, CI), so stdout stays free for results.
import type { EpochProgress } from '../sbi/npe.js';

export interface ProgressReporter {
  onEpoch(p: EpochProgress): void;
  /** Ends the bar's line. */
  done(): void;
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : String(v));

export function epochProgress(
  stream: NodeJS.WriteStream = process.stderr,
  width = 24,
): ProgressReporter {
  const tty = stream.isTTY === true;
  let drawn = false;
  return {
    onEpoch(p) {
      const losses = `train ${fmt(p.trainLoss)}  val ${fmt(p.valLoss)}  best ${fmt(p.bestValLoss)}  ${(p.epochMs / 1000).toFixed(2)} s/epoch`;
      const epoch = `epoch ${String(p.epoch).padStart(String(p.maxEpochs).length)}/${p.maxEpochs}`;
      if (tty) {
        const filled = Math.round((width * p.epoch) / p.maxEpochs);
        const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
        stream.write(`\r${bar} ${epoch}  ${losses}\x1b[K`);
        drawn = true;
      } else {
        stream.write(`${epoch}  ${losses}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  };
}
