"""TS-GEN: transition-state geometries from atom-mapped reactant/product pairs (E(3)-equivariant flow matching).

``from sciflow.methods.tsgen import TSGen``; needs torch only (ase/RDKit load when files or Atoms are read,
tblite/sella only for xTB checks in ``sciflow.domains.molecules.xtb``).
"""
from .data import PreparedReactions, prepare_reactions
from .model import T_EPS, TSGen
from .network import TSVelocityNet, reaction_edge_attr

__all__ = ["T_EPS", "PreparedReactions", "TSGen", "TSVelocityNet", "prepare_reactions", "reaction_edge_attr"]
