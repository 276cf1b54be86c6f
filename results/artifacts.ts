// Binary artifacts (simulations, checkpoints, models) in GridFS under deterministic names such as
// sims/<hash>, checkpoints/<trialId>/latest, models/<trialId>. GridFS works on FerretDB 1.24 (checked
// against the real server: 3 MB round trip, its two indexes, delete). A name may have several
// versions for a moment: put writes the new version completely before it deletes older ones, so a
// crash between the two leaves the new one readable, and readers always take the newest.
import { createHash } from 'node:crypto';
import { GridFSBucket, type Db, type GridFSFile, type ObjectId } from 'mongodb';
import { decodeDocument, encodeDocument } from './nonfinite.js';

export const ARTIFACT_BUCKET = 'artifacts';

/** Letters, digits and ._:|=- in '/'-separated segments; no empty, '.' or '..' segment. */
const NAME = /^[A-Za-z0-9_:|=-][A-Za-z0-9._:|=-]*(\/[A-Za-z0-9_:|=-][A-Za-z0-9._:|=-]*)*$/;

export class ArtifactNameError extends Error {
  constructor(name: string) {
    super(
      `Artifact name ${JSON.stringify(name)} is not valid: use '/'-separated segments of letters, digits and ._:|=- (at most 512 characters).`,
    );
    this.name = 'ArtifactNameError';
  }
}

export function checkArtifactName(name: string): void {
  if (
    name.length === 0 ||
    name.length > 512 ||
    !NAME.test(name) ||
    name.split('/').includes('..')
  ) {
    throw new ArtifactNameError(name);
  }
}

export interface ArtifactInfo {
  name: string;
  id: ObjectId;
  length: number;
  sha256: string;
  uploadDate: Date;
  metadata: Record<string, unknown>;
}

export interface PutResult extends ArtifactInfo {
  /** false when the newest version already held these bytes, so nothing was written. */
  written: boolean;
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function infoOf(f: GridFSFile): ArtifactInfo {
  // Metadata is stored as every document here is: non-finite numbers as null plus their markers.
  const meta = decodeDocument<Record<string, unknown>>(f.metadata ?? {});
  const sha = typeof meta.sha256 === 'string' ? meta.sha256 : '';
  delete meta.sha256;
  return {
    name: f.filename,
    id: f._id,
    length: f.length,
    sha256: sha,
    uploadDate: f.uploadDate,
    metadata: meta,
  };
}

/** Newest first: by upload date, then by ObjectId (increasing within a writer). */
function newestFirst(a: GridFSFile, b: GridFSFile): number {
  return (
    b.uploadDate.getTime() - a.uploadDate.getTime() ||
    b._id.toHexString().localeCompare(a._id.toHexString())
  );
}

/** Reads of a version that another writer replaces under them, before get gives up. */
const GET_ATTEMPTS = 5;

/** The driver's errors for a file or chunk that disappeared during a download. */
function isGoneMidRead(err: unknown): boolean {
  return /FileNotFound|ChunkIsMissing|not found|missing/i.test(String((err as Error)?.message));
}

export class ArtifactStore {
  readonly bucket: GridFSBucket;

  constructor(
    readonly db: Db,
    readonly bucketName = ARTIFACT_BUCKET,
  ) {
    this.bucket = new GridFSBucket(db, { bucketName });
  }

  private async versions(name: string): Promise<GridFSFile[]> {
    const files = await this.bucket.find({ filename: name }).toArray();
    return files.sort(newestFirst);
  }

  /** The newest version's description, or null. */
  async info(name: string): Promise<ArtifactInfo | null> {
    checkArtifactName(name);
    const [newest] = await this.versions(name);
    return newest ? infoOf(newest) : null;
  }

  async exists(name: string): Promise<boolean> {
    return (await this.info(name)) !== null;
  }

  /**
   * Stores `data` under `name`. Idempotent: when the newest version holds the same bytes nothing is
   * written. Otherwise the new version is uploaded completely, then the versions older than it are
   * deleted (only older ones, so two concurrent writers cannot delete each other's version).
   */
  async put(
    name: string,
    data: Uint8Array,
    metadata: Record<string, unknown> = {},
  ): Promise<PutResult> {
    checkArtifactName(name);
    if ('sha256' in metadata)
      throw new Error('Artifact metadata may not set sha256; it is computed.');
    const sha256 = sha256Hex(data);
    const existing = await this.versions(name);
    const newest = existing[0];
    if (newest && newest.length === data.length && newest.metadata?.sha256 === sha256) {
      return { ...infoOf(newest), written: false };
    }
    const id = await new Promise<ObjectId>((resolve, reject) => {
      const up = this.bucket.openUploadStream(name, {
        metadata: { ...encodeDocument(metadata), sha256 },
      });
      up.once('error', reject);
      up.once('finish', () => resolve(up.id as ObjectId));
      up.end(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    });
    const mine = (await this.bucket.find({ _id: id }).toArray())[0];
    if (!mine) throw new Error(`Artifact ${name}: the version just written is not readable.`);
    for (const f of await this.versions(name)) {
      if (newestFirst(mine, f) < 0) await this.deleteVersion(f._id);
    }
    return { ...infoOf(mine), written: true };
  }

  /**
   * The newest version's bytes, or null when there is none. Verifies its sha256. A version can be
   * deleted while it is read (a put of a newer one, as a training's next checkpoint); the
   * read then starts again from the newest version, a few times.
   */
  async get(name: string): Promise<Uint8Array | null> {
    checkArtifactName(name);
    for (let attempt = 1; ; attempt++) {
      const [newest] = await this.versions(name);
      if (!newest) return null;
      let data: Uint8Array;
      try {
        const parts: Buffer[] = [];
        for await (const chunk of this.bucket.openDownloadStream(newest._id))
          parts.push(chunk as Buffer);
        data = new Uint8Array(Buffer.concat(parts));
      } catch (err) {
        if (attempt < GET_ATTEMPTS && isGoneMidRead(err)) continue;
        throw err;
      }
      const expected = newest.metadata?.sha256;
      if (typeof expected === 'string' && sha256Hex(data) !== expected) {
        // Chunks deleted under the read can also show as a short or mixed read.
        if (attempt < GET_ATTEMPTS && !(await this.stillStored(newest._id))) continue;
        throw new Error(`Artifact ${name} is corrupt: its bytes do not match the stored sha256.`);
      }
      return data;
    }
  }

  private async stillStored(id: ObjectId): Promise<boolean> {
    return (await this.bucket.find({ _id: id }).toArray()).length > 0;
  }

  /** Deletes every version of `name`; returns how many there were (0 is not an error). */
  async delete(name: string): Promise<number> {
    checkArtifactName(name);
    const all = await this.versions(name);
    for (const f of all) await this.deleteVersion(f._id);
    return all.length;
  }

  /** Newest version of each name under a prefix such as 'checkpoints/<trialId>/'. */
  async list(prefix = ''): Promise<ArtifactInfo[]> {
    // No $regex pushdown on FerretDB/SQLite either way; filter here.
    const files = await this.bucket.find({}).toArray();
    const newest = new Map<string, GridFSFile>();
    for (const f of files.sort(newestFirst)) {
      if (f.filename.startsWith(prefix) && !newest.has(f.filename)) newest.set(f.filename, f);
    }
    return [...newest.values()]
      .map(infoOf)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Deletes chunks whose file document never appeared (an upload killed midway: the driver writes
   * the file document last). Only chunks of uploads that started more than `olderThanMs` ago, so an
   * upload in progress is left alone. Returns the number of uploads cleaned.
   */
  async removeOrphanChunks(olderThanMs = 3_600_000): Promise<number> {
    const chunks = this.db.collection(`${this.bucketName}.chunks`);
    const files = this.db.collection(`${this.bucketName}.files`);
    const fileIds = (await chunks.distinct('files_id')) as ObjectId[];
    const cutoff = Date.now() - olderThanMs;
    let removed = 0;
    for (const id of fileIds) {
      if (id.getTimestamp().getTime() > cutoff) continue;
      if ((await files.countDocuments({ _id: id }, { limit: 1 })) > 0) continue;
      await chunks.deleteMany({ files_id: id });
      removed++;
    }
    return removed;
  }

  private async deleteVersion(id: ObjectId): Promise<void> {
    try {
      await this.bucket.delete(id);
    } catch (err) {
      // Someone else deleted it first: the goal is reached.
      if (!/File not found/i.test(String((err as Error).message))) throw err;
    }
  }
}
