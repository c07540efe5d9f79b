import json

import torch

from sciflow.core.training import DistInfo
from sciflow.workflows import RunContext


def ctx(tmp_path, rank=0, world=1, seed=0, resume=True):
    return RunContext(output=tmp_path, seed=seed, device=torch.device("cpu"), dist=DistInfo(rank, world, rank),
                      resume=resume)


def test_sharding_covers_every_item_once(tmp_path):
    items = list(range(11))
    shards = [ctx(tmp_path, r, 3).shard(items) for r in range(3)]
    assert sorted(sum(shards, [])) == items
    assert all(len(s) in (3, 4) for s in shards)


def test_item_randomness_does_not_depend_on_the_rank(tmp_path):
    a = torch.rand(4, generator=ctx(tmp_path, 0, 1).item_generator("rxn7"))
    b = torch.rand(4, generator=ctx(tmp_path, 1, 2).item_generator("rxn7"))
    c = torch.rand(4, generator=ctx(tmp_path, 0, 1).item_generator("rxn8"))
    d = torch.rand(4, generator=ctx(tmp_path, 0, 1, seed=1).item_generator("rxn7"))
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, d)


def test_done_markers_and_resume_flag(tmp_path):
    c = ctx(tmp_path)
    assert not c.is_done("x")
    c.mark_done("x", {"w2": 0.1})
    assert c.is_done("x") and c.done_info("x")["w2"] == 0.1
    assert not ctx(tmp_path, resume=False).is_done("x")


def test_atomic_json_and_text(tmp_path):
    c = ctx(tmp_path)
    p = c.write_json("a/b.json", {"k": 1})
    assert json.loads(p.read_text()) == {"k": 1}
    c.write_text("a/c.txt", "hello")
    assert (tmp_path / "a/c.txt").read_text() == "hello"
    assert not list(tmp_path.rglob("*.tmp*"))


def test_gather_collects_every_ranks_items(tmp_path):
    """Each rank marks its own share; the summary (gather on the main rank) sees all of them, in key order."""
    keys = [f"rxn{i}" for i in range(5)]
    for rank in (0, 1):
        c = ctx(tmp_path, rank, 2)
        for k in c.shard(keys):
            c.mark_done(k, {"rank": rank})
    got = ctx(tmp_path, 0, 2).gather([*keys, "not-run"])
    assert list(got) == keys and [got[k]["rank"] for k in keys] == [0, 1, 0, 1, 0]
