// Per-task estimator settings that RABI's task configs fix (research/paper.md section 7): the
// high-dimensional observations go through the MLP embedding net (pyloric: its CNN + MLP). Callers merge these between
// defaultEstimatorConfig(kind) and the user's own overrides.

/** Tasks whose x RABI embeds with its `mlp` embedding net. */
const MLP_EMBEDDED: readonly string[] = ['hodgkin_huxley', 'spatial_sir', 'vae'];

export function taskEstimatorDefaults(task: string): Record<string, unknown> {
  // The pyloric traces go through RABI's per-neuron CNN + MLP (research/pyloric.md section 4.1).
  if (task === 'pyloric') return { embedding: 'pyloric-cnn' };
  return MLP_EMBEDDED.includes(task) ? { embedding: 'mlp' } : {};
}
