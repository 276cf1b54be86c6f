"""The MADEs of an nflows Flow as sbi 0.27's build_maf makes it, in the JSON layout that
bench/nflows-weights.ts reads: per MADE the RandomPermutation after it and its weights with masks
applied, rows in nflows' [out, in] layout. Shared by nflows_maf_fixture.py and sbi_same_start.py."""

import torch


def made_layers(flow_net):
    """Each MADE of `flow_net` (an nflows Flow: a standardizing transform, then MADE and
    permutation pairs) with the permutation that follows it."""
    parts = flow_net._transform._transforms
    layers = []
    with torch.no_grad():
        for i in range(1, len(parts), 2):
            made = parts[i].autoregressive_net
            layers.append(
                {
                    "perm": parts[i + 1]._permutation.tolist(),
                    "W0": (made.initial_layer.weight * made.initial_layer.mask).tolist(),
                    "b0": made.initial_layer.bias.tolist(),
                    "Wc": made.context_layer.weight.tolist(),
                    "bc": made.context_layer.bias.tolist(),
                    "Wh": [(b.linear.weight * b.linear.mask).tolist() for b in made.blocks],
                    "bh": [b.linear.bias.tolist() for b in made.blocks],
                    "Wf": (made.final_layer.weight * made.final_layer.mask).tolist(),
                    "bf": made.final_layer.bias.tolist(),
                }
            )
    return layers
