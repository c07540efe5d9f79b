"""Molecules: atoms <-> ragged graphs, frames (centring, Kabsch), element embeddings, bond features, file I/O.

Imports torch and numpy only; ase and RDKit load inside the functions that read or write their objects, and the
xTB helpers (``sciflow.domains.molecules.xtb``) load tblite/sella only when called.
"""
from .adapter import (
           POS_MIDPOINT,
           MoleculesAdapter,
           check_reaction,
           collate_molecules,
           reaction_frame,
           replicate_graphs,
)
from .elements import atomic_number, covalent_radii_of, masses_of, symbol, to_atomic_numbers
from .features import N_BOND_FEATURES, ElementEmbedding, bond_features
from .geometry import center, centroid, kabsch_align, kabsch_rmsd, kabsch_rotation, rmsd
from .io import (
           Molecule,
           as_molecule,
           read_molecules,
           read_sdf,
           read_xyz,
           to_atoms,
           to_rdkit,
           write_xyz_frames,
)

__all__ = [
           "N_BOND_FEATURES",
           "POS_MIDPOINT",
           "ElementEmbedding",
           "Molecule",
           "MoleculesAdapter",
           "as_molecule",
           "atomic_number",
           "bond_features",
           "center",
           "centroid",
           "check_reaction",
           "collate_molecules",
           "covalent_radii_of",
           "kabsch_align",
           "kabsch_rmsd",
           "kabsch_rotation",
           "masses_of",
           "reaction_frame",
           "read_molecules",
           "read_sdf",
           "read_xyz",
           "replicate_graphs",
           "rmsd",
           "symbol",
           "to_atomic_numbers",
           "to_atoms",
           "to_rdkit",
           "write_xyz_frames",
]
