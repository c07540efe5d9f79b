"""Names of the photon-walk tensor fields (principle 3: each name once, with its shape and unit).

A walk lives in the frame of its incoming direction: the photon starts at the centre of the unit sphere, its
first scattering event happens there, and the incoming direction is +z. Lengths are in sphere radii.
"""

#: (B,) float. Sphere radius in mean free paths (optical radius, sigma_t * r).
SIGMA_R = "sigma_r"
#: (B,) float in (-1, 1). Henyey-Greenstein anisotropy (mean cosine of the phase function).
G = "g"
#: (B,) float in [0, 1]. Single-scattering albedo Phi.
ALBEDO = "albedo"
#: (B,) int64 >= 1. Number of scattering events of the walk (the first one is at the centre).
N_EVENTS = "n_events"
#: (B, 3) float, unit vectors. Where the walk leaves the unit sphere.
EXIT_POS = "exit_pos"
#: (B, 3) float, unit vectors. Propagation direction when the walk leaves the sphere.
EXIT_DIR = "exit_dir"
#: (B, 3) float, |x| <= 1. Position of the representative scattering event (for next-event estimation).
SCATTER_POS = "scatter_pos"
#: (B, 3) float, unit vectors. Propagation direction arriving at the representative event.
SCATTER_DIR = "scatter_dir"
#: (B,) int64 in [1, N]. Index of the representative event, drawn with probability Phi^k / sum_j Phi^j.
SCATTER_INDEX = "scatter_index"
#: (B,) float. sum_{k=1..N} Phi^k: the weight of the representative event's next-event estimate.
NEE_WEIGHT = "nee_weight"
#: (B,) float. Phi^N: the walk's survival (absorption applied analytically).
SURVIVAL = "survival"

CONDITION_KEYS = (SIGMA_R, G, ALBEDO)
RECORD_KEYS = (N_EVENTS, EXIT_POS, EXIT_DIR, SCATTER_POS, SCATTER_DIR, SCATTER_INDEX)

__all__ = [
           "ALBEDO",
           "CONDITION_KEYS",
           "EXIT_DIR",
           "EXIT_POS",
           "NEE_WEIGHT",
           "N_EVENTS",
           "RECORD_KEYS",
           "SCATTER_DIR",
           "SCATTER_INDEX",
           "SCATTER_POS",
           "SIGMA_R",
           "SURVIVAL",
           "G",
]
