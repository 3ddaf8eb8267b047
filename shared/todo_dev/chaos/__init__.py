"""The chaos suite (``make chaos``; a short run in tests/system/test_chaos.py): a paced mixed load by many
users with WebSockets open, faults injected on a schedule, then a checker over the database, Kafka and
what the clients received.

* ``checker``: pure. What was collected in, counts of what was lost, duplicated or reordered out; it
  plants each kind of defect into a copy of the data and must find each (``prove``).
* ``load``: the users (httpx + websockets, asyncio, paced).
* ``faults``: the schedule and how each fault is made and undone on a ``todo_dev.stack.Stack``.
* ``collect``: reads the database and Kafka once the system has settled.
* ``run``: one run from start to report; ``__main__``: ``make chaos``.
"""
