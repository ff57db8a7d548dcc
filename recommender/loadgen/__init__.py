"""Everything that touches Locust. Analysis code never imports from here.

Modules that import locust or gevent (`harness`, `roles`, `users`, the locustfiles) run only
inside the Locust subprocess; `config`, `driver`, `merge`, `payloads`, `recorder`, `requestlog`,
`sigv4` and `runner` are plain Python and safe anywhere.

    runner    the load test from our side: prepare (pure), drive (Locust), finalize
    config    LoadgenConfig: what the runner tells the Locust processes (JSON, messages)
    harness   Locust's event hooks and what users call; hands each event to the role
    roles     LocalRole, MasterRole, WorkerRole: one process's part and its state
    users     InvocationsUser, the paced user to subclass in a locustfile
"""
