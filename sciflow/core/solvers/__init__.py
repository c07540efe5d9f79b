"""Solvers take a field f(x, t, **cond), a start state, a time grid and a generator; they return a Trajectory."""
from .adaptive import Dopri5
from .base import Field, Solver, check_grid, time_like
from .ode import RK4, Euler, ExplicitRK, Heun, Midpoint
from .sde import EulerMaruyama

__all__ = [
           "RK4",
           "Dopri5",
           "Euler",
           "EulerMaruyama",
           "ExplicitRK",
           "Field",
           "Heun",
           "Midpoint",
           "Solver",
           "check_grid",
           "time_like",
]
