"""The classical baseline: OMPL's control-space RRT (``ompl.control.RRT``, PyPI ``ompl`` 2.0.1) on the same car
dynamics, the same collision checker and the same goal region as the sciflow planners.

State space: SE(2) x R^2 (speed, steering) with OMPL's compound distance; control space: (accel, steer rate)
within the car's bounds. OMPL's propagation step is one control period; the Python propagator integrates its
``control_period`` integration steps with the same RK4 step as ``Car.step`` (float64) and marks the state
invalid when any intermediate integration step collides, so every integration step is checked, as in DiTree.
Goal biasing uses a sampleable goal region (uniform over the goal disc). ``ompl`` is imported only here, inside
functions.

The propagator, the validity checker and the goal distance are Python callbacks (``ompl.control.RRT`` takes
them from Python in ompl 2.0.1; a C++ propagator cannot be built against the wheel here), so every OMPL call of
them crosses into Python. Their arithmetic is ``scalar_kernels``: ``Car.step_scalar`` and
``CollisionChecker.state_valid_scalar`` specialised once per solve (same numbers, about half the time per call);
what remains of a propagation's cost is the bindings' state access and OMPL's own work (docs/ditree.md gives the
measured costs).

Seeding: OMPL draws from its own process-wide generator, which can be seeded only before its first random
number generator exists (``ompl.util.RNG.setSeed`` then warns and does nothing). OMPL 2.0.1's Python bindings
give no way to seed the generators inside a planner: ``RNG.setLocalSeed`` works only on an ``RNG`` made in
Python, and the RRT's own, its state sampler's and its control sampler's are not reachable (there is no state
or control sampler allocator to replace them). So the first solve of a process seeds OMPL, from ``seed`` when
given, else from that solve's ``generator``; later solves in the same process continue OMPL's stream whatever
their generator. One plan per process (``sciflow ditree plan``) is thus repeatable from its seed; the runs of
an evaluation in one process are not repeatable one by one, unlike the torch planners' (``info["ompl_seed"]``
says which seed the process has).
"""
from __future__ import annotations

import math
import time

import torch

from ...core.errors import SciflowError
from ...domains.robots import Scenario
from .planners import GOAL_MARGIN
from .problem import check_budget
from .tree import PlanResult, mark_overrun

__all__ = ["OMPLRRT", "ompl_available", "scalar_kernels"]

_SEEDED: int | None = None           # the seed OMPL's process-wide generator was given (None: not yet)


def ompl_available() -> bool:
    try:
        import ompl.control  # noqa: F401
    except ImportError:
        return False
    return True



def ompl_yaw(theta: float) -> float:
    """theta wrapped to [-pi, pi), the interval OMPL's SO2 bounds accept (a start heading of exactly pi is
    rejected as out of bounds, which would leave the planner without a start state)."""
    y = math.remainder(theta, 2 * math.pi)
    return -math.pi if y >= math.pi else y

def scalar_kernels(car, checker) -> tuple:
    """``(step, valid)``: ``car.step_scalar`` and ``checker.state_valid_scalar`` for OMPL's Python callbacks,
    specialised once per solve so that a call does only the arithmetic.

    ``step(x, y, th, v, d, a, w) -> (x, y, th, v, d)`` is ``Car.step_scalar`` with the default ``dt`` (the same
    operations in the same order, float64, so the same numbers; the car's constants bound once, comparisons instead
    of ``min``/``max`` calls). ``valid(x, y, heading) -> bool`` is ``CollisionChecker.state_valid_scalar``: each
    covering disc's centre looked up in the world's distance field (cell by the same floor division, outside the
    map invalid), the test ``field - margin < radius`` precomputed per cell in float64 (the same comparison) into a
    flat Python list instead of a numpy read per disc. The batched ``Car.step`` / ``CollisionChecker.states_valid``
    agree to float tolerance (the torch field is float32); ``tests/ditree/test_ompl_scalar_speed_equivalence.py``
    checks both agreements."""
    p, world = car.p, checker.world
    h, hh, h6 = p.dt, 0.5 * p.dt, p.dt / 6
    amax, wmax, vmin, vmax, dmax = p.max_accel, p.max_steer_rate, p.min_speed, p.max_speed, p.max_steer
    namax, nwmax, ndmax = -amax, -wmax, -dmax
    inv_l = 1.0 / p.wheelbase
    pi, two_pi = math.pi, 2 * math.pi
    cos, sin, tan, floor = math.cos, math.sin, math.tan, math.floor

    def step(x: float, y: float, th: float, v: float, d: float, a: float, w: float) -> tuple:
        if a < namax:
            a = namax
        elif a > amax:
            a = amax
        if w < nwmax:
            w = nwmax
        elif w > wmax:
            w = wmax
        v1 = v + a * h
        if v1 < vmin:
            v1 = vmin
        elif v1 > vmax:
            v1 = vmax
        d1 = d + w * h
        if d1 < ndmax:
            d1 = ndmax
        elif d1 > dmax:
            d1 = dmax
        vm, dm = v + 0.5 * (v1 - v), d + 0.5 * (d1 - d)
        k1t = v * tan(d) * inv_l
        k2t = vm * tan(dm) * inv_l
        k4t = v1 * tan(d1) * inv_l
        t2, t3, t4 = th + hh * k1t, th + hh * k2t, th + h * k2t
        vm2 = 2 * vm
        x1 = x + h6 * (v * cos(th) + vm2 * cos(t2) + vm2 * cos(t3) + v1 * cos(t4))
        y1 = y + h6 * (v * sin(th) + vm2 * sin(t2) + vm2 * sin(t3) + v1 * sin(t4))
        th1 = th + h6 * (k1t + 2 * k2t + 2 * k2t + k4t)
        return x1, y1, th1 - two_pi * floor((th1 + pi) / two_pi), v1, d1

    x0, y0, res, rows, cols = world.bounds[0], world.bounds[1], world.resolution, world.rows, world.cols
    free = (~((world.field_np - world.margin) < checker.radius)).ravel().tolist()
    offs = tuple(p.disc_offsets)

    def valid(x: float, y: float, heading: float) -> bool:
        c, s = cos(heading), sin(heading)
        for off in offs:
            j = floor((x + off * c - x0) / res)
            i = floor((y + off * s - y0) / res)
            if i < 0 or j < 0 or i >= rows or j >= cols or not free[i * cols + j]:
                return False
        return True

    if len(offs) == 2:                                      # the default footprint, unrolled
        o1, o2 = offs

        def valid(x: float, y: float, heading: float) -> bool:
            c, s = cos(heading), sin(heading)
            j = floor((x + o1 * c - x0) / res)
            i = floor((y + o1 * s - y0) / res)
            if i < 0 or j < 0 or i >= rows or j >= cols or not free[i * cols + j]:
                return False
            j = floor((x + o2 * c - x0) / res)
            i = floor((y + o2 * s - y0) / res)
            return not (i < 0 or j < 0 or i >= rows or j >= cols or not free[i * cols + j])

    return step, valid


class OMPLRRT:
    """``ompl.control.RRT`` with OMPL's own goal bias and a control duration range matching sciflow's edges.

    Args:
        goal_bias: OMPL RRT goal bias (probability of expanding towards a sampled goal state).
        min_controls, max_controls: control duration range, in control periods (0.1 s by default).
        intermediate_states: keep every propagation step in the tree (goal checked at each). Off by default:
            with it on, OMPL's RRT propagates each sampled motion twice (once in the control sampler, once to
            collect the states), which doubled its integration and collision-check cost per tree node (2.07
            propagate calls per node against 1 per period without; 56/70 against 48/70 scenarios solved in 1.5 s
            in a review's check). The goal is then checked at the end of each motion; the returned path is
            re-simulated and cut at its first state in the goal either way.
        speed_weight: weight of the (speed, steering) subspace in OMPL's compound distance.
        seed: OMPL's process-wide seed, applied by the first solve of the process only (module docstring);
            None: drawn from that solve's generator, or 1 without one.
    """

    name = "ompl-rrt"

    def __init__(self, goal_bias: float = 0.05, min_controls: int = 2, max_controls: int = 10,
                 intermediate_states: bool = False, speed_weight: float = 0.1, seed: int | None = None) -> None:
        self.goal_bias, self.min_controls, self.max_controls = float(goal_bias), int(min_controls), int(max_controls)
        self.intermediate_states, self.speed_weight, self.seed = bool(intermediate_states), float(speed_weight), seed

    def solve(self, scenario: Scenario, *, budget_s: float | None = None, generator: torch.Generator | None = None,
              keep_tree: bool = False, **_: object) -> PlanResult:
        try:
            import ompl.base as ob
            import ompl.control as oc
            import ompl.util as ou
        except ImportError:
            raise SciflowError("ompl-rrt: the 'ompl' package is not installed (pip install 'sciflow[robots]')") \
                from None
        global _SEEDED
        if _SEEDED is None:
            ou.setLogLevel(ou.LOG_WARN)
            if self.seed is not None:
                _SEEDED = int(self.seed) % (2**31 - 2) + 1      # OMPL refuses 0 (it would silently use 1)
            elif generator is not None:
                _SEEDED = int(torch.randint(1, 2**31 - 1, (1,), generator=generator, device=generator.device))
            else:
                _SEEDED = 1
            ou.RNG.setSeed(_SEEDED)
        car, checker, goal = scenario.car(), scenario.checker(), scenario.goal
        p = car.p
        budget_s = check_budget(budget_s)
        budget = float(scenario.budget_s if budget_s is None else budget_s)
        xmin, ymin, xmax, ymax = scenario.world.bounds

        se2 = ob.SE2StateSpace()
        b = ob.RealVectorBounds(2)
        b.setLow(0, xmin), b.setHigh(0, xmax), b.setLow(1, ymin), b.setHigh(1, ymax)
        se2.setBounds(b)
        vs = ob.RealVectorStateSpace(2)
        bv = ob.RealVectorBounds(2)
        bv.setLow(0, p.min_speed), bv.setHigh(0, p.max_speed), bv.setLow(1, -p.max_steer), bv.setHigh(1, p.max_steer)
        vs.setBounds(bv)
        space = ob.CompoundStateSpace()
        space.addSubspace(se2, 1.0)
        space.addSubspace(vs, self.speed_weight)
        cspace = oc.RealVectorControlSpace(space, 2)
        cb = ob.RealVectorBounds(2)
        cb.setLow(0, -p.max_accel), cb.setHigh(0, p.max_accel)
        cb.setLow(1, -p.max_steer_rate), cb.setHigh(1, p.max_steer_rate)
        cspace.setBounds(cb)
        ss = oc.SimpleSetup(cspace)
        counts = [0, 0]                                       # propagate calls, validity checks
        step, valid_scalar = scalar_kernels(car, checker)
        far = xmin - 1000.0
        period, dt, control_dt = p.control_period, p.dt, p.control_dt
        pi, two_pi, remainder = math.pi, 2 * math.pi, math.remainder

        def is_valid(s) -> bool:
            counts[1] += 1
            q = s[0]
            return valid_scalar(q.getX(), q.getY(), q.getYaw())

        def propagate(start, control, duration, result) -> None:
            counts[0] += 1
            q, r = start[0], start[1]
            a, w = control[0], control[1]
            k = period if duration == control_dt else max(1, round(duration / dt))
            x, y, th, v, d = step(q.getX(), q.getY(), q.getYaw(), r[0], r[1], a, w)
            ok = True
            for _ in range(k - 1):                          # the states between the steps (the end: is_valid)
                if ok and not valid_scalar(x, y, th):
                    ok = False
                x, y, th, v, d = step(x, y, th, v, d, a, w)
            out, outv = result[0], result[1]
            out.setX(x if ok else far)
            out.setY(y)
            th = remainder(th, two_pi)                      # ompl_yaw, inlined
            out.setYaw(-pi if th >= pi else th)
            outv[0], outv[1] = v, d

        ss.setStateValidityChecker(is_valid)
        ss.setStatePropagator(propagate)
        si = ss.getSpaceInformation()
        si.setPropagationStepSize(p.control_dt)
        si.setMinMaxControlDuration(self.min_controls, self.max_controls)

        class DiscGoal(ob.GoalSampleableRegion):
            def __init__(self, info) -> None:
                super().__init__(info)
                self.setThreshold(goal.radius - GOAL_MARGIN)      # the goal test of every other planner
                self._rng = ou.RNG()

            def distanceGoal(self, s, hypot=math.hypot, gx=goal.x, gy=goal.y) -> float:
                q = s[0]
                return hypot(q.getX() - gx, q.getY() - gy)

            def sampleGoal(self, s) -> None:
                r = goal.radius * math.sqrt(self._rng.uniform01())
                a = 2 * math.pi * self._rng.uniform01()
                q, v = s[0], s[1]
                q.setX(goal.x + r * math.cos(a))
                q.setY(goal.y + r * math.sin(a))
                q.setYaw(self._rng.uniformReal(-math.pi, math.pi))
                v[0] = self._rng.uniformReal(p.min_speed, p.max_speed)
                v[1] = self._rng.uniformReal(-p.max_steer, p.max_steer)

            def maxSampleCount(self) -> int:
                return 1 << 30

        start = space.allocState()
        sx, sy, sth, sv, sd = scenario.start
        start[0].setX(sx), start[0].setY(sy), start[0].setYaw(ompl_yaw(sth))
        start[1][0], start[1][1] = sv, sd
        ss.setStartState(start)
        goal_obj = DiscGoal(si)
        ss.setGoal(goal_obj)
        planner = oc.RRT(si)
        planner.setGoalBias(self.goal_bias)
        planner.setIntermediateStates(self.intermediate_states)
        ss.setPlanner(planner)
        ss.setup()
        t0 = time.perf_counter()
        ss.solve(budget)
        elapsed = time.perf_counter() - t0
        success = bool(ss.haveExactSolutionPath())
        try:
            pd = ob.PlannerData(si)
            ss.getPlannerData(pd)
            tree_size = int(pd.numVertices())
        except Exception:  # noqa: BLE001 - older bindings lack PlannerData
            tree_size = counts[0]
        res = PlanResult(self.name, success, elapsed, p.dt, tree_size=tree_size,
                         expansions=counts[0], info={"propagations": counts[0],
                                                               "validity_checks": counts[1],
                                                               "ompl_seed": _SEEDED})
        if success:
            path = ss.getSolutionPath()
            ctrls = []
            for i in range(path.getControlCount()):
                c = path.getControl(i)
                n = round(path.getControlDuration(i) / p.dt)
                ctrls.append(torch.tensor([[c[0], c[1]]], dtype=torch.float64).expand(n, 2))
            steps = torch.cat(ctrls) if ctrls else torch.zeros(0, 2, dtype=torch.float64)
            s0 = torch.tensor([scenario.start], dtype=torch.float64)
            states = car.simulate(s0, steps[None])[0]
            inside = goal.contains(states, GOAL_MARGIN).nonzero().flatten()
            if len(inside):                                     # trim at the first integration step in the goal
                last = int(inside[0])
                states, steps = states[: last + 1], steps[:last]
            res.states, res.controls = states.to(torch.float32), steps.to(torch.float32)
        if keep_tree:
            res.edges = []
        return mark_overrun(res, budget)
