"""Exit codes of every evenstride command (cron and systemd see these).

| code | meaning |
|---|---|
| 0 | everything worked |
| 1 | some items failed (a file did not decode, an athlete's sync failed); the rest is stored |
| 2 | usage or configuration error (bad option, missing setting) |
| 3 | authentication needed: no valid tokens, or refresh refused; run the `login` command shown |
| 4 | rate limited (HTTP 429): stopped at once, everything fetched so far is kept; retry later |
| 5 | service unavailable: server errors or network failures persisted after bounded retries |
| 6 | local storage problem: database locked by another process, disk full, corrupt archive |
| 75 | `nightly` only: another nightly run holds the lock (EX_TEMPFAIL; systemd treats it as success) |
| 130 | interrupted (Ctrl-C); everything committed so far is kept |
"""

OK = 0
SOME_FAILED = 1
USAGE = 2
AUTH_NEEDED = 3
RATE_LIMITED = 4
UNAVAILABLE = 5
STORAGE = 6
LOCKED = 75
INTERRUPTED = 130
