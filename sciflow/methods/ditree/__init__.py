"""DiTree: flow-matching action-chunk policy inside RRT for kinodynamic planning of a car-like robot
(Hassidof, Jurgenson & Solovey, CoRL 2025, reimplemented). ``ompl`` loads only with the ``rrt`` baseline."""
from .method import PLANNERS, DiTree, PlanningFailed, baseline_planner
from .planners import TreePlanner
from .policy import ChunkPolicyNet, PolicySampler
from .problem import ActionSampler, Problem, RandomControls
from .rollout import PolicyRollout
from .sst import SSTPlanner
from .tree import PlanResult, Tree, plan_trajectory

__all__ = ["PLANNERS", "DiTree", "PlanningFailed", "baseline_planner", "TreePlanner", "ChunkPolicyNet",
           "PolicySampler", "ActionSampler", "Problem", "RandomControls", "PolicyRollout", "SSTPlanner",
           "PlanResult", "Tree", "plan_trajectory"]
