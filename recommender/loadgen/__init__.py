"""Everything that touches Locust. Analysis code never imports from here.

Modules that import locust (`harness`, `users`, the locustfiles) run only inside the Locust
subprocess; `driver`, `merge`, `payloads`, `recorder`, `sigv4` and `runner` are plain Python and
safe anywhere.
"""
