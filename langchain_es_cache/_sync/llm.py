# Generated from langchain_es_cache/_async/llm.py: do not edit.
# Edit the source, then run `nox -s codegen` (utils/generate_sync.py).
"""The base of the exact and the semantic LLM caches: the answer document they
store, and single flight's requests.

Single flight's rules and in-process bookkeeping are in
`langchain_es_cache._common.single_flight`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import ConflictError, NotFoundError
from langchain_core.caches import RETURN_VAL_TYPE

from langchain_es_cache._common.documents import (
    build_llm_document,
    parse_generations,
)
from langchain_es_cache._common.failures import ES_ERRORS
from langchain_es_cache._common.mappings import LOOKUP_FIELDS
from langchain_es_cache._common.responses import (
    bulk_failure,
    is_conflict,
)
from langchain_es_cache._common.single_flight import (
    CLAIM_FIELDS,
    Backoff,
    Claim,
    Flight,
    Flights,
    Step,
    claim_document,
    claim_id,
    claims_query,
    flight_state,
    owner_token,
    seconds_until,
    validate_single_flight,
    with_claims,
    written_claim,
)
from langchain_es_cache._common.usage import tokens_of
from langchain_es_cache._common.validation import validate_flag
from langchain_es_cache._sync.index import CacheIndex, EntryOptions
from langchain_es_cache._twins import Caller, Signal
from langchain_es_cache.types import Refresh

logger = logging.getLogger("langchain_es_cache")


class LLMOptions(EntryOptions, total=False):
    """`EntryOptions`, and those of the exact and semantic LLM caches."""

    store_input: bool
    """Store the prompt in ``llm_input`` (default: `True`)."""
    store_input_params: bool
    """Store the model's parameters in ``llm_params`` (default: `True`)."""
    single_flight: float | timedelta | None
    """Seconds or `timedelta`: a miss claims its key for this long, and lookups
    of that key, in any process, wait for the claimer's answer instead of
    calling the model too (default: none)."""


class LLMCacheIndex(CacheIndex):
    """An LLM cache index: answers stored as documents built in one place
    (`_llm_document`), and misses that can claim their key (``single_flight=``).

    Without `single_flight`, no claim is ever sent.
    """

    OPTIONS = frozenset(LLMOptions.__annotations__)

    def __init__(self, index_name: str, options: Mapping[str, Any]) -> None:
        super().__init__(
            index_name, store_input=options.get("store_input", True), options=options
        )
        self._store_input_params = validate_flag(
            "store_input_params", options.get("store_input_params", True)
        )
        period = validate_single_flight(options.get("single_flight"))
        self._flights: Flights[Signal] | None = (
            None if period is None else Flights(period, Signal)
        )
        self._claim_owner = owner_token()

    def _llm_document(
        self, prompt: str, llm_string: str, return_val: RETURN_VAL_TYPE
    ) -> dict[str, Any]:
        """The document that stores `return_val` for `prompt` and `llm_string`."""
        return build_llm_document(
            prompt,
            llm_string,
            return_val,
            store_input_params=self._store_input_params,
            **self._stamp(),
        )

    @property
    def single_flight(self) -> timedelta | None:
        """How long a miss holds its key for the other callers, or `None`."""
        return None if self._flights is None else self._flights.period

    def _mappings(self, mappings: dict[str, Any]) -> dict[str, Any]:
        """`mappings`, plus the claims' fields with `single_flight`."""
        if self._flights is None:
            return mappings
        return with_claims(mappings)

    # --- lookups -------------------------------------------------------------

    def _coalesce(self, key: str) -> RETURN_VAL_TYPE | None:
        """A lookup's miss of `key` with `single_flight`: claim the key and miss,
        or wait for the answer of the caller holding it."""
        flights = self._flights
        assert flights is not None
        me = Caller.current()
        waited = False
        while True:
            step = flights.join(key, me, self._clock())
            if step.kind == "miss":
                self._outcomes.count("misses")
                return None
            if step.kind == "wait":
                assert step.signal is not None
                step.signal.wait(step.timeout)
                if step.flight.answer is not None:
                    return self._coalesced(step.flight.answer, key)
                waited = True
                continue
            try:
                return self._lead(key, me, step, read_first=waited)
            except ES_ERRORS as exc:
                flights.abandon(key, step.flight, me)
                # With "warn", a miss: as if single_flight were off.
                self._outcomes.failed("lookup", exc)
                return None
            except BaseException:
                flights.abandon(key, step.flight, me)
                raise

    def _lead(
        self, key: str, me: object, step: Step[Signal], *, read_first: bool
    ) -> RETURN_VAL_TYPE | None:
        """Claim `key` for `me` (a miss), or poll until its answer is written
        (a hit) or its claim expires (then claim it).

        A caller that has waited reads before it claims: the answer may have
        come meanwhile.
        """
        flights = self._flights
        assert flights is not None
        flight = step.flight
        claim = None
        if step.expired is not None:
            claim = self._take_over(key, step.expired)
        elif not read_first:
            claim = self._create_claim(key)
        if claim is not None:
            return self._owned(key, flight, me, claim)
        if not step.may_wait:
            flights.abandon(key, flight, me)
            self._outcomes.count("misses")
            return None
        backoff = Backoff()
        while True:
            answer, remote = self._read_flight(key)
            if answer is not None:
                flights.finish(key, answer)
                return self._coalesced(answer, key)
            now = self._clock()
            if remote is None or remote.expires <= now:
                if remote is None:
                    claim = self._create_claim(key)
                else:
                    claim = self._take_over(key, remote)
                if claim is None:
                    continue  # another caller won: read its claim
                if remote is None:
                    # The claim vanished: with its answer written in between?
                    answer = (self._read_flight(key))[0]
                    if answer is not None:
                        self._delete_claim(key, claim)
                        flights.finish(key, answer)
                        return self._coalesced(answer, key)
                return self._owned(key, flight, me, claim)
            # Woken early by this object's update of the key, if it comes. The
            # update sets the answer before the signal: read them the other way.
            signal = flight.signal
            if flight.answer is None:
                wait = seconds_until(remote.expires, now)
                signal.wait(min(backoff.next(), wait))
            if flight.answer is not None:
                return self._coalesced(flight.answer, key)

    def _owned(
        self, key: str, flight: Flight[Signal], me: object, claim: Claim
    ) -> RETURN_VAL_TYPE | None:
        """`me` holds `claim`: a miss, unless an update answered meanwhile."""
        flights = self._flights
        assert flights is not None
        if flights.own(key, flight, me, claim):
            self._outcomes.count("misses")
            return None
        self._delete_claim(key, claim)
        assert flight.answer is not None
        return self._coalesced(flight.answer, key)

    def _coalesced(self, answer: list[str], key: str) -> RETURN_VAL_TYPE | None:
        """A waiter's own copy of `answer`: a hit answered by another caller."""
        found = parse_generations(
            {"llm_output": answer}, index=self._index_name, key=key
        )
        if found is None:
            self._outcomes.count("misses")
            return None
        self._outcomes.count("hits")
        self._outcomes.count("coalesced")
        self._outcomes.count("tokens_saved", tokens_of(found))
        return found

    # --- claim requests ----------------------------------------------------------

    def _claim_document(self) -> tuple[dict[str, Any], datetime]:
        assert self._flights is not None
        expires = self._clock() + self._flights.period
        document = claim_document(
            namespace=self._namespace, owner=self._claim_owner, expires=expires
        )
        return document, expires

    def _create_claim(self, key: str) -> Claim | None:
        """Create the claim on `key`; `None` if another caller holds one.

        Written like an entry (`_write`): an index without the cache's mapping
        refuses it rather than mapping ``namespace`` by guesswork.
        """
        document, expires = self._claim_document()
        with self._gate("lookup", timed=True):
            (item,) = self._write(claim_id(key), document, False, op="create")
        if is_conflict(item):
            return None
        return written_claim(next(iter(item.values())), expires)

    def _take_over(self, key: str, expired: Claim) -> Claim | None:
        """Replace the `expired` claim on `key`, unless someone changed it first."""
        document, expires = self._claim_document()
        with self._gate("lookup", timed=True):
            (item,) = self._write(
                claim_id(key),
                document,
                False,
                target=expired.index,
                conditions={
                    "if_seq_no": expired.seq_no,
                    "if_primary_term": expired.primary_term,
                },
            )
        if is_conflict(item):
            return None
        return written_claim(next(iter(item.values())), expires)

    def _delete_claim(self, key: str, claim: Claim) -> None:
        """Delete `claim` on `key` if it is still the one written."""
        try:
            with self._gate("update", timed=True):
                self._client.delete(
                    index=claim.index,
                    id=claim_id(key),
                    if_seq_no=claim.seq_no,
                    if_primary_term=claim.primary_term,
                )
        except (ConflictError, NotFoundError):
            pass
        except ES_ERRORS as exc:
            # The answer is in hand; the claim expires by itself.
            logger.debug("claim on %s not deleted: %s", key, exc)

    def _read_flight(self, key: str) -> tuple[list[str] | None, Claim | None]:
        """Realtime-read the entry `key` and its claim, in one request: its
        fresh answer, and the claim (`flight_state`).

        The claim is read first, so that a claim already gone when read, deleted
        by the update that wrote the entry, is never paired with no entry.
        """
        ids = [claim_id(key), key]
        with self._gate("lookup", timed=True):
            docs = self._realtime_docs(ids, [*LOOKUP_FIELDS, *CLAIM_FIELDS])
        return flight_state(docs, key, self._ttl, self._clock())

    # --- updates, clear, purge ---------------------------------------------------

    def _store_answer(
        self,
        doc_id: str,
        document: dict[str, Any],
        *,
        refresh: Refresh = False,
    ) -> bool:
        """Write an entry; with `single_flight`, also delete the claim this object
        holds on it (in the same request) and hand the answer to the callers
        waiting for it in this process. Tells whether the entry was written."""
        flights = self._flights
        if flights is None:
            return self._store(doc_id, document, refresh=refresh)
        claim = flights.held(doc_id)
        if claim is None:
            written = self._store(doc_id, document, refresh=refresh)
        else:
            written = self._store_releasing(doc_id, document, claim, refresh)
        # Even unwritten, the answer is good for the callers waiting here.
        flights.finish(doc_id, document["llm_output"])
        return written

    def _store_releasing(
        self, doc_id: str, document: dict[str, Any], claim: Claim, refresh: Refresh
    ) -> bool:
        """`_store`, with the delete of `claim` in the same bulk request.

        The claim is deleted whoever holds it now: the entry is written first
        (same shard, in order), so its waiters find the answer.
        """
        try:
            with self._gate("update", timed=True):
                items = self._write(
                    doc_id,
                    document,
                    refresh,
                    then=[{"delete": {"_index": claim.index, "_id": claim_id(doc_id)}}],
                )
        except ES_ERRORS as exc:
            self._outcomes.failed("update", exc)
            return False
        released = bulk_failure(items[1])
        if released is not None:
            # It expires by itself.
            logger.debug("claim on %s not deleted: %s", doc_id, released[1])
        self._outcomes.count("writes")
        return True

    def clear(self, **kwargs: Any) -> None:
        """Delete the cache's entries (in its namespace), or those matching filters.

        Filters, combined with AND: ``llm_string=``, ``older_than=`` (seconds or
        `timedelta`), ``metadata=`` (a dict of stored metadata values). Logs how
        many entries were deleted. With `single_flight`, also deletes the
        namespace's claims.
        """
        if self._clear(kwargs):
            self._deleted()
            self._clear_claims()

    def _deleted(self) -> None:
        """Hook run after `clear` deleted entries."""

    def _clear_claims(self) -> None:
        """Delete the namespace's claims (after `clear`): callers waiting in
        other processes then claim again."""
        if self._flights is None:
            return
        deleted = self._delete("clear", claims_query(self._namespace))
        if deleted is None:
            return
        logger.debug("cleared %d claims from %s", deleted, self._index_name)

    def purge_expired(self) -> int:
        """Delete the entries older than `ttl` (in the namespace); return how many.

        With `single_flight`, also delete the namespace's expired claims (not
        counted), and a cache without `ttl` deletes only those.
        """
        if self._flights is None:
            return super().purge_expired()
        deleted = 0
        if self._ttl is not None:
            deleted = super().purge_expired()
        query = claims_query(self._namespace, expired_at=self._clock())
        claims = self._delete("purge_expired", query)
        if claims is not None:
            logger.debug("purged %d expired claims from %s", claims, self._index_name)
        return deleted
