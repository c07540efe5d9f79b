"""Robots: a car-like robot with second-order bicycle dynamics, 2-D worlds with batched collision checks,
planning scenarios (YAML/JSON), the egocentric local observation and path smoothing by tracking."""
from .car import CONTROL_DIM, CONTROL_NAMES, STATE_DIM, STATE_NAMES, Car, CarParams, wrap_angle
from .collision import CollisionChecker
from .observation import PROPRIO_DIM, TARGET_FEATURES, LocalObservation
from .plan_io import PLAN_COLUMNS, read_plan_csv, write_plan_csv
from .scenario import FORMAT, GoalRegion, Scenario, load_scenario, save_scenario, scenario_files
from .tracking import TrackResult, resample_polyline, shortcut_polyline, track_path
from .verify import verify_plan
from .world import World, grid_to_rectangles

__all__ = [
           "CONTROL_DIM",
           "CONTROL_NAMES",
           "FORMAT",
           "PLAN_COLUMNS",
           "PROPRIO_DIM",
           "STATE_DIM",
           "STATE_NAMES",
           "TARGET_FEATURES",
           "Car",
           "CarParams",
           "CollisionChecker",
           "GoalRegion",
           "LocalObservation",
           "Scenario",
           "TrackResult",
           "World",
           "grid_to_rectangles",
           "load_scenario",
           "read_plan_csv",
           "resample_polyline",
           "save_scenario",
           "scenario_files",
           "shortcut_polyline",
           "track_path",
           "verify_plan",
           "wrap_angle",
           "write_plan_csv",
]
