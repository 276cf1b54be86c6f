// The artifact store's interface over a Map, for activity tests that need no MongoDB (the GridFS
// store itself is tested against the real server in test/integration/results-store.test.ts).
import type { ActivityDeps } from '../../../activities/deps.js';

export type MemoryArtifacts = ActivityDeps['artifacts'] & { names(): string[] };

export function memoryArtifacts(): MemoryArtifacts {
  const files = new Map<string, { data: Uint8Array; metadata: Record<string, unknown> }>();
  const store = {
    info: async (name: string) => {
      const f = files.get(name);
      return f ? { name, length: f.data.length, metadata: f.metadata } : null;
    },
    exists: async (name: string) => files.has(name),
    get: async (name: string) => files.get(name)?.data.slice() ?? null,
    put: async (name: string, data: Uint8Array, metadata: Record<string, unknown> = {}) => {
      files.set(name, { data: data.slice(), metadata });
      return { name, written: true };
    },
    delete: async (name: string) => (files.delete(name) ? 1 : 0),
    names: () => [...files.keys()].sort(),
  };
  return store as unknown as MemoryArtifacts;
}
