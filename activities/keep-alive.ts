// Heartbeats between the natural ones (an epoch, an attack record), so that a long epoch or attack
// batch does not look like a dead worker. The timer fires whenever the event loop is free, which
// tfjs leaves it between batches; a truly blocked process stops heartbeating, as a dead one would.
import type { Context } from '@temporalio/activity';

export function keepAlive(ctx: Context, details: () => unknown, everyMs = 5000): () => void {
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
