"""``openkms status``'s readable table of a node's status (``openkms.server.status``)."""

from __future__ import annotations

from typing import Any


def status_table(status: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [
        ("version", str(status.get("version"))),
        ("started", f"{status.get('started_at')} (up {_duration(status.get('uptime_seconds'))})"),
    ]
    root = status.get("root_of_trust") or {}
    seal = "sealed" if root.get("sealed") else "unsealed"
    if root.get("sealed") and root.get("threshold"):
        seal += f" ({root.get('progress', 0)} of {root['threshold']} shares given)"
    if root.get("generation") is not None:
        seal += f", root key generation {root['generation']}"
    rows.append(("root of trust", f"{root.get('type')}: {seal}"))
    database = status.get("database") or {}
    reach = "reachable" if database.get("reachable") else f"UNREACHABLE ({database.get('error')})"
    rows.append(("database", f"{database.get('kind')}, {reach}"))
    workers = status.get("workers") or {}
    rows.append(("workers", f"{workers.get('serving')} serving of {workers.get('configured')}"))
    keys = status.get("keys_by_state")
    if keys is None:
        rows.append(("keys", "unknown (database unreachable)"))
    else:
        total = sum(keys.values())
        detail = ", ".join(f"{state} {count}" for state, count in keys.items())
        rows.append(("keys", f"{total}" + (f" ({detail})" if detail else "")))
    rows.append(("audit trail", _audit(status.get("audit_trail") or {})))
    jobs = status.get("jobs") or {}
    last_run, last_failure = jobs.get("last_run") or "never", jobs.get("last_failure") or "never"
    rows.append(
        (
            "background jobs",
            f"{jobs.get('runs')} runs, {jobs.get('failures')} failed; last run {last_run}, "
            f"last failure {last_failure}",
        )
    )
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name.ljust(width)}  {value}" for name, value in rows)


def _audit(audit: dict[str, Any]) -> str:
    if not audit.get("enabled"):
        return "off"
    state = "available" if audit.get("available") else "UNAVAILABLE (refusing requests)"
    newest = audit.get("newest_event")
    head = "no events yet"
    if newest:
        head = (
            f"head {newest['hash'][:16]}… (writer {newest['writer_id'][:8]}, "
            f"seq {newest['seq']}, {newest['event_time']})"
        )
    return f"{state}, {audit.get('writers')} writers, {head}, {audit.get('queue_depth')} queued"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float):
        return "?"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d {text}" if days else text
