"""SST's batched bookkeeping (witness buffer, gathered candidate poses/costs, representative-cost array) gives
exactly what the per-row Python code it replaced gave: the same helpers' values on recorded inputs, and the same
search (nodes, witnesses, pruning, plan) for a fixed number of iterations on a fixed generator."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciflow.core.random import make_generator, rand
from sciflow.methods.ditree import sst
from sciflow.methods.ditree.planners import add_edges, propagate_edges
from sciflow.methods.ditree.problem import Problem, sample_targets
from sciflow.methods.ditree.sst import SSTPlanner, _candidates, _metric, _Witnesses, assign_rows
from sciflow.methods.ditree.tree import Tree


def _reference_solve(pl: SSTPlanner, scenario, iters: int, generator: torch.Generator) -> dict:
    """The former SSTPlanner.solve loop (per-row lists, witness list rebuilt as a tensor every iteration, a
    per-witness lookup of the representative's time), run for exactly ``iters`` iterations."""
    problem = Problem.from_scenario(scenario, "cpu")
    g = generator
    min_steps = pl.min_steps if pl.min_steps is not None else problem.car.p.control_period
    tree = Tree(problem.start)
    active = np.zeros(1024, dtype=bool)
    active[0] = True
    children = np.zeros(1024, dtype=np.int64)
    wit = [problem.start[:3].tolist()]
    rep = [0]
    goal_node, it = None, 0
    with torch.no_grad():
        while it < iters:
            it += 1
            xy = sample_targets(problem, pl.batch, pl.goal_bias, g)
            th = (rand((pl.batch, 1), generator=g, device=problem.device) * 2 - 1) * math.pi
            targets = torch.cat([xy, th], dim=1)
            act = torch.as_tensor(np.nonzero(active[: tree.n])[0], device=problem.device)
            d = _metric(targets, tree.nodes[act, :3], pl.w)
            cost = tree.time[act].expand_as(d)
            near_cost = torch.where(d <= pl.delta_bn, cost, torch.full_like(cost, math.inf))
            near_min, best = near_cost.min(dim=1)
            none_near = torch.isinf(near_min)
            best = torch.where(none_near, d.min(dim=1).indices, best)
            parents = act[best]
            controls, n_ctrl = pl.sampler.sample(problem, tree.nodes[parents], targets[:, :2], g)
            prop = propagate_edges(problem, tree.nodes[parents], controls, n_ctrl, min_steps)
            rows = prop["keep"].nonzero().flatten().tolist()
            if not rows:
                continue
            ends = prop["end"].tolist()
            edge = prop["edge"]
            par_time = tree.time[parents].tolist()
            wit_t = torch.tensor(wit, dtype=torch.float32, device=problem.device)
            new_pose = torch.stack([edge[b, ends[b], :3] for b in rows])
            dw = _metric(new_pose, wit_t, pl.w)
            dmin, wnear = dw.min(dim=1)
            dmin, wnear = dmin.tolist(), wnear.tolist()
            costs = [par_time[b] + ends[b] * problem.dt for b in rows]
            reached = [bool(prop["reached"][b]) for b in rows]
            pair = _metric(new_pose, new_pose, pl.w).tolist()
            pos, replaced, made = assign_rows(
                costs, reached, dmin, wnear, pair, lambda w: float(tree.time[rep[w]]) if rep[w] >= 0 else math.inf,
                len(wit), pl.delta_s)
            for k in made:
                wit.append(new_pose[k].tolist())
                rep.append(-1)
            accepted = [rows[k] for k in pos]
            if not accepted:
                continue
            new, goal_node = add_edges(problem, tree, parents, prop, accepted)
            if tree.n > active.shape[0]:
                grow = tree.n * 2
                active = np.concatenate([active, np.zeros(grow - active.shape[0], bool)])
                children = np.concatenate([children, np.zeros(grow - children.shape[0], np.int64)])
            for node, b, w in zip(new.tolist(), accepted, replaced):
                active[node] = True
                children[int(parents[b])] += 1
                if w < 0:
                    continue
                old = rep[w]
                rep[w] = node
                if old >= 0 and old != node:
                    pl._prune(tree, active, children, old)
            if goal_node is not None:
                break
    out = {"iterations": it, "witnesses": len(wit), "nodes_created": tree.n,
           "tree_size": int(active[: tree.n].sum()), "goal": goal_node, "wit": torch.tensor(wit, dtype=torch.float32),
           "rep": rep, "edges": [tree.edge(i)[0][:, :2] for i in range(1, tree.n) if active[i] or children[i] > 0]}
    out["path"] = tree.path_to(goal_node) if goal_node is not None else None
    return out


def _fixed_iterations(ticking_clock, iters: int) -> float:
    """A clock that ticks 1 s per read: solve reads it at the start and once per iteration, so a budget of
    ``iters + 0.5`` runs exactly ``iters`` iterations (unless the goal is reached first)."""
    ticking_clock(sst)
    return iters + 0.5


@pytest.mark.parametrize("seed, iters", [(0, 40), (1, 120), (3, 120)])
def test_sst_search_is_unchanged_for_a_fixed_iteration_count(ticking_clock, wall_scenario, seed, iters):
    pl = SSTPlanner(batch=48)
    ref = _reference_solve(pl, wall_scenario, iters, make_generator(seed))
    res = pl.solve(wall_scenario, budget_s=_fixed_iterations(ticking_clock, iters), generator=make_generator(seed),
                   keep_tree=True)
    assert res.info["iterations"] == ref["iterations"]
    assert res.info["witnesses"] == ref["witnesses"] > 20
    assert res.info["nodes_created"] == ref["nodes_created"]
    assert res.tree_size == ref["tree_size"]
    assert len(res.edges) == len(ref["edges"]) and all(torch.equal(a, b) for a, b in zip(res.edges, ref["edges"]))
    if ref["path"] is None:
        assert res.states is None
    else:
        assert torch.equal(res.states, ref["path"][0]) and torch.equal(res.controls, ref["path"][1])


def test_sst_finds_the_same_plan_in_the_open(ticking_clock, open_scenario):
    pl = SSTPlanner(batch=32)
    ref = _reference_solve(pl, open_scenario, 200, make_generator(2))
    res = pl.solve(open_scenario, budget_s=_fixed_iterations(ticking_clock, 200), generator=make_generator(2))
    assert ref["goal"] is not None and res.states is not None
    assert res.info["iterations"] == ref["iterations"] < 200
    assert torch.equal(res.states, ref["path"][0]) and torch.equal(res.controls, ref["path"][1])


def test_candidates_and_witnesses_equal_the_per_row_code(open_scenario):
    """On a recorded propagation: the gathered poses/costs/goal flags, the witness buffer and the
    representative costs equal the former per-row expressions."""
    problem = Problem.from_scenario(open_scenario, "cpu")
    g = make_generator(4)
    tree = Tree(problem.start)
    wit, rep = [problem.start[:3].tolist()], [0]
    witnesses = _Witnesses(problem.start[:3], capacity=2)       # grows several times below
    for _ in range(6):
        parents = torch.randint(0, tree.n, (24,), generator=g)
        controls, n_ctrl = SSTPlanner().sampler.sample(problem, tree.nodes[parents], sample_targets(
            problem, 24, 0.1, g), g)
        prop = propagate_edges(problem, tree.nodes[parents], controls, n_ctrl, 1)
        rows_t = prop["keep"].nonzero().flatten()
        rows, ends, par_time = rows_t.tolist(), prop["end"].tolist(), tree.time[parents].tolist()
        pose, costs, reached = _candidates(prop, rows_t, tree.time[parents], problem.dt)
        assert torch.equal(pose, torch.stack([prop["edge"][b, ends[b], :3] for b in rows]))
        assert costs == [par_time[b] + ends[b] * problem.dt for b in rows]
        assert reached == [bool(prop["reached"][b]) for b in rows]
        new, _ = add_edges(problem, tree, parents, prop, rows)
        made = list(range(0, len(rows), 3))
        for k in made:
            wit.append(pose[k].tolist())
            rep.append(-1)
        witnesses.add(pose[torch.as_tensor(made, dtype=torch.long)])
        assert len(witnesses) == len(wit)
        assert torch.equal(witnesses.poses, torch.tensor(wit, dtype=torch.float32))
        for w, node in zip(range(1, len(wit), 2), new.tolist()):              # new representatives for some
            assert witnesses.set_rep(w, node, float(tree.time[node])) == rep[w]
            rep[w] = node
        for w in range(len(wit)):
            assert witnesses.rep_cost(w) == (float(tree.time[rep[w]]) if rep[w] >= 0 else math.inf)
