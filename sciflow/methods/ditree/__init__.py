"""DiTree: flow-matching action-chunk policy inside RRT for kinodynamic planning of a car-like robot
(Hassidof, Jurgenson & Solovey, CoRL 2025, reimplemented). ``ompl`` loads only with the ``rrt`` baseline."""
from .method import PLANNERS, DiTree, PlanningFailed, baseline_planner
from .planners import TreePlanner
from .policy import ChunkPolicyNet, PolicySampler
from .problem import ActionSampler, MixedSampler, Problem, RandomControls
from .rollout import PolicyRollout
from .sst import SSTPlanner
from .tree import PlanResult, Tree, plan_trajectory

__all__ = [
           "PLANNERS",
           "ActionSampler",
           "ChunkPolicyNet",
           "DiTree",
           "MixedSampler",
           "PlanResult",
           "PlanningFailed",
           "PolicyRollout",
           "PolicySampler",
           "Problem",
           "RandomControls",
           "SSTPlanner",
           "Tree",
           "TreePlanner",
           "baseline_planner",
           "plan_trajectory",
]
