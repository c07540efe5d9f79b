"""Names of the tensor fields that travel between layers (principle 3: name a field once).

Each constant is the key used in condition dicts, ``Trajectory.extras`` and data files.
Shapes use B for samples, N for nodes (atoms) of a ragged graph batch, T for time steps.
"""

#: (N, 3) float, Å. Cartesian positions of atoms in a ragged graph batch.
POS = "pos"
#: (N,) int64. Index of the graph (sample) each node belongs to, sorted ascending.
BATCH = "batch"
#: (N,) int64. Atomic numbers.
ATOMIC_NUMBERS = "atomic_numbers"
#: (N, 3) float, Å. Reactant geometry (condition for TS-GEN).
POS_REACTANT = "pos_reactant"
#: (N, 3) float, Å. Product geometry (condition for TS-GEN).
POS_PRODUCT = "pos_product"
#: (N, 3) float, Å. Transition-state geometry (target for TS-GEN).
POS_TS = "pos_ts"
#: (2, E) int64. Edge index of a graph (source, target).
EDGE_INDEX = "edge_index"
#: (T, B) float, eV or kcal/mol as documented by the producer. Energy per frame and sample.
ENERGY = "energy"
#: (B, ...) float. Controls applied along a plan (robots).
CONTROLS = "controls"
#: (B,) float. Log-likelihood or log-weight of each sample.
LOG_WEIGHT = "log_weight"
#: (B, d) float. Conditioning vector of a sample.
COND = "cond"

__all__ = [
    "ATOMIC_NUMBERS",
    "BATCH",
    "COND",
    "CONTROLS",
    "EDGE_INDEX",
    "ENERGY",
    "LOG_WEIGHT",
    "POS",
    "POS_PRODUCT",
    "POS_REACTANT",
    "POS_TS",
]
