// `robustsbi sweep tag ID key=value [...] [--remove KEY] [--trial]` and `robustsbi sweep note ID
// "text" [--trial]`: tags and notes in MongoDB's annotations collection (results/annotations.ts),
// shown by the dashboard. They need MongoDB only, never Temporal. Every argument is checked before
// a connection is made.
import { parseArgs } from 'node:util';
import { UserError } from './errors.js';
import { closeLogger } from '../infra/logger.js';
import { probeMongo, unreachableSentence } from '../infra/probe.js';
import { commandContext, userFacing } from './commands/infra.js';
import { AnnotationError, checkNote, checkTagKey, parseTags } from '../results/annotations.js';

export const ANNOTATE_USAGE = `       robustsbi sweep tag ID key=value [...] [--remove KEY] [--trial]
       robustsbi sweep note ID "text" [--trial]`;

export const ANNOTATE_HELP = `  tag ID k=v      set tags on a sweep (or with --trial a trial); --remove KEY drops one
  note ID "text"  append a note to a sweep (or with --trial a trial)`;

const ID = /^[0-9a-f]{8,64}$/;

export interface AnnotateArgs {
  sub: 'tag' | 'note';
  kind: 'sweep' | 'trial';
  id: string;
  tags: Record<string, string>;
  remove: string[];
  note?: string;
}

/** The arguments of `sweep tag | note`, checked; a UserError naming what is wrong otherwise. */
export function parseAnnotateArgs(sub: 'tag' | 'note', argv: string[]): AnnotateArgs {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        trial: { type: 'boolean', default: false },
        remove: { type: 'string', multiple: true, default: [] },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    const quoted = /'([^']+)'/.exec((e as Error).message)?.[1] ?? '';
    throw new UserError(
      `${quoted ? `Unknown or incomplete option "${quoted}"` : (e as Error).message.split('.')[0]} for "robustsbi sweep ${sub}"; run "robustsbi sweep --help".`,
    );
  }
  const { values: v, positionals } = parsed;
  const kind = v.trial ? 'trial' : 'sweep';
  const [rawId, ...rest] = positionals;
  if (rawId === undefined)
    throw new UserError(`"robustsbi sweep ${sub}" needs a ${kind} ID first.`);
  const id = rawId.replace(/^(sweep|trial)\//, '');
  if (!ID.test(id))
    throw new UserError(
      `"${rawId}" is not a ${kind} ID (a hex ID as "sweep list" or the dashboard shows).`,
    );
  try {
    if (sub === 'note') {
      if (v.remove!.length > 0) throw new UserError('--remove applies to "sweep tag" only.');
      if (rest.length !== 1)
        throw new UserError(
          `"robustsbi sweep note" takes one note after the ID (quote it); got ${rest.length}.`,
        );
      return { sub, kind, id, tags: {}, remove: [], note: checkNote(rest[0]!) };
    }
    const remove = v.remove!;
    remove.forEach(checkTagKey);
    const tags = rest.length === 0 && remove.length > 0 ? {} : parseTags(rest);
    const both = remove.find((k) => k in tags);
    if (both) throw new UserError(`The tag "${both}" is both set and removed.`);
    return { sub, kind, id, tags, remove };
  } catch (e) {
    if (e instanceof AnnotationError) throw new UserError(e.message);
    throw e;
  }
}

export async function annotateCommand(sub: 'tag' | 'note', argv: string[]): Promise<number> {
  const a = parseAnnotateArgs(sub, argv);
  const { config, logger } = commandContext();
  let close: (() => Promise<void>) | undefined;
  try {
    const m = await probeMongo(config);
    if (!m.ok)
      throw new UserError(
        `${unreachableSentence('mongodb', config, m)} Start the embedded stack with "robustsbi infra up" or fix MONGODB_URI.`,
        1,
      );
    const { openResultStore } = await import('../results/store.js');
    const { AnnotationStore } = await import('../results/annotations.js');
    const opened = await openResultStore(config);
    close = opened.close;
    const exists =
      a.kind === 'sweep'
        ? await opened.store.sweeps.findOne({ _id: a.id }, { projection: { _id: 1 } })
        : await opened.store.trials.findOne({ _id: a.id }, { projection: { _id: 1 } });
    if (!exists) throw new UserError(`No ${a.kind} with ID ${a.id} is stored in MongoDB.`);
    const annotations = new AnnotationStore(opened.client.db(config.mongo.db));
    const doc =
      a.sub === 'note'
        ? await annotations.note(a.kind, a.id, a.note!)
        : await annotations.tag(a.kind, a.id, a.tags, a.remove);
    const tags = Object.entries(doc.tags ?? {})
      .map(([k, val]) => `${k}=${val}`)
      .join(' ');
    console.log(
      `${a.kind} ${a.id}: ${tags ? `tags ${tags}` : 'no tags'}; ${doc.notes?.length ?? 0} note${doc.notes?.length === 1 ? '' : 's'}`,
    );
    return 0;
  } catch (err) {
    throw userFacing(err);
  } finally {
    await close?.().catch(() => {});
    await closeLogger(logger);
  }
}
