// Per-task estimator settings that RABI's task configs fix (research/paper.md section 7): the
// high-dimensional observations go through the MLP embedding net. Callers merge these between
// defaultEstimatorConfig(kind) and the user's own overrides.

/** Tasks whose x RABI embeds with its `mlp` embedding net. */
const MLP_EMBEDDED: readonly string[] = ['hodgkin_huxley', 'spatial_sir', 'vae'];

export function taskEstimatorDefaults(task: string): Record<string, unknown> {
  return MLP_EMBEDDED.includes(task) ? { embedding: 'mlp' } : {};
}
