"""Everything responder keeps in Redis, behind one seam.

- ``redis_keys``: every key name, with what it holds (nothing outside this package formats one);
- ``writeset``: the intake's atomic commit, one Lua script call per batch;
- ``redisconn``: connections (kept connections, hiredis packing, retries);
- ``queueing``: RQ jobs for runs, retries and follow polls (first attempts built from RQ's own
  job hash, checked field by field against RQ's enqueue in tests/test_queueing.py);
- ``history``: the decision history and its bounded trim;
- ``pacing``: GitHub write slots shared across workers;
- ``locks``: releasing a lock only by its holder.

Every Lua script responder runs lives in these modules.
"""
