"""The sessions of the server (SessionStore): keyed by Gradio's session hash, reattached after a
reload by a browser key, bounded per client address and in all, dropped when idle or ended.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import Counter, OrderedDict
from pathlib import Path

from . import (
    classroom,
    resources,
)
from .session_state import Session
from .zoo import Zoo

MAX_SESSIONS = 100  # sessions of API-only clients (no page) kept at once, in all


MAX_CLIENT_SESSIONS = 20  # ... per client address (a script makes its own sessions go first)


MAX_CLIENT_PAGES = 200  # page sessions per client address (a class behind one address fits)


RECENT_S = 120.0  # a session used this recently is never dropped to make room


IDLE_SESSION_S = 3 * 3600  # a session nobody used for this long is dropped


GRACE_S = 60.0  # a page's session outlives its page this long, for a reload to reattach to it


ATTACH_WAIT_S = 3.0  # a reloaded page may load before its old page's unload arrives: waited for


BROWSER_KEYS = 4  # browser keys a page sends at most (one per tab of that browser that lives)


KEY_CHARS = 43  # secrets.token_urlsafe(32): 256 bits


_KEY_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


ORPHAN_S = 30.0  # a reattached page's unused new session ends this much later


def valid_key(key) -> bool:
    """A browser key as this server makes them (anything else is ignored, never looked up)."""
    return isinstance(key, str) and len(key) == KEY_CHARS and set(key) <= _KEY_ALPHABET


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _later(seconds: float, fn, *args) -> None:
    timer = threading.Timer(seconds, fn, args)
    timer.daemon = True
    timer.start()


class SessionStore:
    """Sessions by key.

    A session with a browser page lives until its page closes (or it has been idle for
    `idle_s`). Sessions of API clients that never load the page are bounded by count: per
    client address (`per_client`), then in all (`limit`, taken first from the address with the
    most). A session is never dropped while it trains (or waits to), while a request of its
    own is in progress (`active`), or within `recent_s` of its last use; so a script that makes
    sessions makes its own sessions go first, and cannot erase a student's work.

    `folder`: where the sessions' folders go (one app folder per store, see resources.py);
    `uploads`: the web server's upload folder (see Session).
    """

    def __init__(self, zoo: Zoo | None, limit: int = MAX_SESSIONS, idle_s: float = IDLE_SESSION_S,
                 per_client: int = MAX_CLIENT_SESSIONS, per_client_pages: int = MAX_CLIENT_PAGES,
                 recent_s: float = RECENT_S, folder: Path | None = None, uploads: Path | None = None,
                 grace_s: float = GRACE_S, attach_wait_s: float = ATTACH_WAIT_S):
        self.zoo = zoo
        self.grace_s, self.attach_wait_s = grace_s, attach_wait_s
        self.shared = classroom.SharedRuns()  # trainings of all sessions: identical ones run once
        self.limit, self.idle_s, self.recent_s = limit, idle_s, recent_s
        self.per_client, self.per_client_pages = per_client, per_client_pages
        self.uploads = uploads
        self._base = folder
        self._root: Path | None = None
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._active: Counter[str] = Counter()  # requests in progress, per session key
        self._links: dict[str, str] = {}  # a reattached page's session hash -> its session's key
        self._keys: dict[str, str] = {}  # digest of a browser key -> its session's key
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path | None:
        """The app folder of this store's sessions (made on first use); None without a base."""
        if self._base is not None and self._root is None:
            self._root = resources.app_folder(self._base)
        return self._root

    def get(self, key: str, page: bool = False, client: str = "") -> Session:
        folder = self.folder
        with self._lock:
            key = self._links.get(key, key)
            s = self._sessions.get(key)
            if s is None:
                s = self._sessions[key] = Session(self.zoo, self.shared, folder, self.uploads)
                s.client = client
            s.page = s.page or page
            s.seen = time.monotonic()
            self._sessions.move_to_end(key)
            dropped = self._trim()
        for old in dropped:
            old.close()
        return s

    def peek(self, key: str) -> Session | None:
        """The session under `key` if there is one; never makes one (e.g. to read its language)."""
        with self._lock:
            return self._sessions.get(self._links.get(key, key))

    def active(self, key: str):
        """A context for a request of this session: it is not dropped while the request runs."""
        store = self

        class _Active:
            def __enter__(self):
                with store._lock:
                    self.key = store._links.get(key, key)  # a reattached page counts for its session
                    store._active[self.key] += 1

            def __exit__(self, *exc):
                with store._lock:
                    store._active[self.key] -= 1
                    if store._active[self.key] <= 0:
                        del store._active[self.key]

        return _Active()

    def _trim(self) -> list[Session]:
        now, out = time.monotonic(), []
        for key, s in list(self._sessions.items()):
            if not s.busy and not self._active[key] and now - s.seen > self.idle_s:
                out.append(self._pop(key))

        def spare(key: str) -> bool:  # may be dropped to make room
            s = self._sessions[key]
            return not s.busy and not self._active[key] and now - s.seen > self.recent_s

        for page, cap in ((False, self.per_client), (True, self.per_client_pages)):
            by_client: dict[str, list[str]] = {}
            for key, s in self._sessions.items():  # least recently used first
                if s.page == page:
                    by_client.setdefault(s.client, []).append(key)
            for keys in by_client.values():
                for key in [k for k in keys if spare(k)][:max(0, len(keys) - cap)]:
                    out.append(self._pop(key))
        api = [k for k, s in self._sessions.items() if not s.page]
        if len(api) > self.limit:
            count = Counter(self._sessions[k].client for k in api)
            order = sorted((k for k in api if spare(k)), key=lambda k: -count[self._sessions[k].client])
            for key in order[:len(api) - self.limit]:  # sorted() is stable: least recently used first
                out.append(self._pop(key))
        return out

    def drop(self, key: str) -> None:
        with self._lock:
            s = self._pop(self._links.get(key, key))
        if s is not None:
            s.close()

    def _pop(self, key: str) -> Session | None:
        """Take a session out with its links and its browser key (the lock held)."""
        s = self._sessions.pop(key, None)
        if s is not None:
            for page in s.pages:
                if self._links.get(page) == key:
                    del self._links[page]
            if s.browser is not None and self._keys.get(s.browser) == key:
                del self._keys[s.browser]
        return s

    # --- reloads: a page that comes back reattaches to its session ---------------------------
    def attach(self, page: str, keys, client: str = "") -> tuple[str, bool]:
        """The page `page` (a session hash) loaded, sending the browser keys its browser keeps.

        It gets the session of the first key whose session lives and has no other page (the
        page before a reload, whose unload may arrive a moment after this load: waited for up
        to `wait_s`); else its own session, with a new key. A key is a bearer secret made here
        (256 bits): only its digest is kept, an unknown or malformed one is ignored, never
        taken as a key. Returns (the key this page's session has now, whether it reattached)."""
        digests = [_digest(k) for k in list(keys or [])[:BROWSER_KEYS] if valid_key(k)]
        deadline = time.monotonic() + self.attach_wait_s
        while True:
            waiting = False
            with self._lock:
                for d in digests:
                    key = self._keys.get(d)
                    s = self._sessions.get(key) if key is not None else None
                    if s is None or s.closed:
                        continue
                    if s.pages - {page}:  # another page holds it: a second tab, or a reload's old page
                        waiting = True
                        continue
                    orphan = self._sessions.pop(page, None) if page != key else None
                    self._links[page] = key
                    s.pages.add(page)
                    s.page, s.released, s.seen = True, None, time.monotonic()
                    self._sessions.move_to_end(key)
                    break
                else:
                    s = None
            if s is not None:
                if orphan is not None:
                    # made by the page's other load events a moment ago: they may still be
                    # running with it, so it ends a little later rather than under them
                    _later(ORPHAN_S, orphan.close)
                return next(k for k in keys if valid_key(k) and _digest(k) == d), True
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        s = self.get(page, page=True, client=client)
        new = secrets.token_urlsafe(32)
        with self._lock:
            if s.browser is not None and self._keys.get(s.browser) == page:
                del self._keys[s.browser]
            s.browser = _digest(new)
            self._keys[s.browser] = page
            s.pages.add(page)
        return new, False

    def alive(self, keys) -> list[str]:
        """The keys, of those given, whose sessions still live (bounded, in order)."""
        with self._lock:
            return [k for k in list(keys or [])[:BROWSER_KEYS] if valid_key(k) and _digest(k) in self._keys]

    def release(self, page: str) -> None:
        """The page `page` closed (or is reloading). A session with a browser key waits
        `grace_s` for a page to reattach (a training goes on meanwhile), then ends; one without
        (an API client's, a page that never attached) ends now."""
        with self._lock:
            key = self._links.pop(page, page)
            s = self._sessions.get(key)
            if s is None:
                return
            s.pages.discard(page)
            if s.browser is not None:
                if not s.pages:
                    s.released = time.monotonic()
                    _later(self.grace_s, self._expire, key, s)
                return
            self._pop(key)
        s.close()

    def _expire(self, key: str, s: Session) -> None:
        with self._lock:
            if self._sessions.get(key) is not s or s.pages or s.released is None:
                return  # reattached, or gone already
            left = s.released + self.grace_s - time.monotonic()
            if left > 0.01 or self._active[key]:  # released again later, or a request still runs
                _later(max(left, 1.0), self._expire, key, s)
                return
            self._pop(key)
        s.close()

    def __len__(self) -> int:
        return len(self._sessions)
