"""Robots: a car-like robot with second-order bicycle dynamics, 2-D worlds with batched collision checks,
planning scenarios (YAML/JSON), the egocentric local observation and path smoothing by tracking."""
from .car import CONTROL_DIM, CONTROL_NAMES, STATE_DIM, STATE_NAMES, Car, CarParams, wrap_angle
from .collision import CollisionChecker
from .observation import PROPRIO_DIM, TARGET_FEATURES, LocalObservation
from .scenario import FORMAT, GoalRegion, Scenario, load_scenario, save_scenario, scenario_files
from .tracking import TrackResult, resample_polyline, shortcut_polyline, track_path
from .verify import verify_plan
from .plan_io import PLAN_COLUMNS, read_plan_csv, write_plan_csv
from .world import World, grid_to_rectangles

__all__ = ["CONTROL_DIM", "CONTROL_NAMES", "STATE_DIM", "STATE_NAMES", "Car", "CarParams", "wrap_angle",
           "CollisionChecker", "PROPRIO_DIM", "TARGET_FEATURES", "LocalObservation", "FORMAT", "GoalRegion",
           "Scenario", "load_scenario", "save_scenario", "scenario_files", "TrackResult", "resample_polyline",
           "shortcut_polyline", "track_path", "verify_plan", "PLAN_COLUMNS", "read_plan_csv", "write_plan_csv", "World", "grid_to_rectangles"]
