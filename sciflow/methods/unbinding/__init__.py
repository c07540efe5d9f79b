"""UnbindingFlow: equivariant flow matching of ligand dissociation paths from a bound complex."""
from .method import ELEMENT_INDEX, PATH_TIME, UnbindingFlow

__all__ = ["ELEMENT_INDEX", "PATH_TIME", "UnbindingFlow"]
