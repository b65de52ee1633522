"""`events(types, members, after)`: the envelopes a subscriber may see, first those since `after`
from the log, then live ones from the replica's hub, with no gap and no repeat at the seam."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from adapters.registry.records import EventRecord
from resolvers.context import RequestContext
from resolvers.errors import ErrorCode, GatewayError, bad_input, forbidden
from resolvers.event_feed import Overflowed
from resolvers.events import EventType, may_subscribe, visibility


def parse_cursor(after: str) -> int:
    if not after.isdigit() or len(after) > 19:
        raise bad_input(f"{after!r} is not an event cursor issued by this API.", field="after")
    return int(after)


async def stream(
    ctx: RequestContext,
    types: Sequence[EventType] | None,
    members: Sequence[str] | None,
    after: str | None,
) -> AsyncIterator[EventRecord]:
    principal = ctx.who
    if not may_subscribe(principal):
        raise forbidden(f"{', '.join(principal.roles)} may not subscribe to events.")
    hub = ctx.event_hub
    if hub is None:
        raise GatewayError(ErrorCode.INTERNAL_SERVER_ERROR, "Events are not enabled here.")
    wanted_types = frozenset(t.value for t in types) if types else None
    wanted_members = frozenset(members) if members else None

    visible = visibility(principal)

    def accepts(event: EventRecord) -> bool:
        return (
            (wanted_types is None or event.type in wanted_types)
            and (wanted_members is None or not wanted_members.isdisjoint(event.members))
            and visible(event)
        )

    position = parse_cursor(after) if after is not None else None
    if position is not None:
        horizon = await hub.store.horizon()
        if position < horizon:
            raise GatewayError(
                ErrorCode.EVENTS_EXPIRED,
                f"Events up to cursor {horizon} are past the log's retention; subscribe without "
                "`after` and re-read the current state with queries.",
                horizon=str(horizon),
            )
        if position > await hub.store.latest():
            raise bad_input(
                f"Cursor {after} is ahead of the event log: use a cursor this API gave you.",
                field="after",
            )
    # Joined before the replay reads the log: an event the replay misses reaches the queue.
    subscriber = hub.subscribe(accepts)
    try:
        if position is None:
            position = subscriber.start
        else:
            while True:
                page = await hub.store.after(position, hub.replay_page)
                for event in page:
                    position = event.cursor
                    if accepts(event):
                        yield event
                if len(page) < hub.replay_page:
                    break
        # From here on the hub may also hand events over itself, moving the position on.
        subscriber.position = position
        while True:
            try:
                batch = await subscriber.next_batch()
            except Overflowed:
                raise GatewayError(
                    ErrorCode.SUBSCRIBER_TOO_SLOW,
                    f"This subscription fell more than {subscriber.capacity} events behind and "
                    f"was closed; subscribe again with after: {str(subscriber.position)!r}.",
                    resumeAfter=str(subscriber.position),
                ) from None
            for event in batch:
                if event.cursor > subscriber.position:
                    subscriber.position = event.cursor
                    yield event
    finally:
        hub.unsubscribe(subscriber)
